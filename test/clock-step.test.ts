/**
 * An Express app in a child process whose wall clock starts 120 s behind
 * and is then corrected, as an NTP step after boot or a resumed virtual
 * machine does. libfaketime fakes the wall clock (CLOCK_REALTIME) of that
 * process alone, through a file it reads on every call, and leaves the
 * monotonic clock alone. Records of requests made after the correction
 * carry the corrected time, and a request in flight during the correction
 * keeps its real duration.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { parseIsoTime } from '../src/task/time'
import { startRedis, waitUntil, type TestRedis } from './helpers/redis-server'

/** libfaketime's preload library, from Debian's `libfaketime` package, or undefined when it is not installed. */
const LIBFAKETIME = findLibfaketime()
if (LIBFAKETIME === undefined) console.warn('clock-step: skipped because libfaketime is not installed')

/** How far behind the app's wall clock starts, in seconds. */
const OFFSET_SECONDS = 120

const APP_SCRIPT = `
  const express = require('express')
  const { topMiddleware } = require('./src/index.ts')
  const app = express()
  app.use(topMiddleware({ trackerUrl: process.env.TEST_REDIS_URL }))
  app.get('/a', (req, res) => res.json({ now: Date.now() }))
  app.get('/slow', (req, res) => setTimeout(() => res.send('slow'), 1500))
  const server = app.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port))
`

let redis: TestRedis
let folder: string
const apps: ChildProcess[] = []

beforeAll(async () => {
  redis = await startRedis()
  folder = mkdtempSync(join(tmpdir(), 'web-top-clock-'))
})

afterAll(async () => {
  for (const app of apps) app.kill('SIGKILL')
  await redis?.close()
  rmSync(folder, { recursive: true, force: true })
})

describe.skipIf(LIBFAKETIME === undefined)('recording across a wall clock step (needs libfaketime)', () => {
  it('follows the corrected clock', async () => {
    const clockFile = join(folder, 'faketime')
    writeFileSync(clockFile, `-${OFFSET_SECONDS}s\n`)
    const origin = await startApp(clockFile)

    const behind = (await (await fetch(`${origin}/a`)).json()) as { now: number }
    expect(Date.now() - behind.now).toBeGreaterThan((OFFSET_SECONDS - 10) * 1000)

    writeFileSync(clockFile, '+0s\n')
    let ended: number | undefined
    // One request each 100 ms, for 15 s at most, until one is stored with the corrected time.
    await waitUntil('a record with the corrected time', 15_000, async () => {
      await fetch(`${origin}/a`)
      await new Promise((resolve) => setTimeout(resolve, 100))
      const newest = await redis.client.lindex('past_tasks', 0)
      ended = newest === null ? undefined : parseIsoTime((JSON.parse(newest) as HttpTask).ended_at)
      return ended !== undefined && Math.abs(Date.now() - ended) < 10_000
    })

    expect(Math.abs(Date.now() - (ended ?? 0))).toBeLessThan(10_000)
  }, 30_000)

  it('keeps a step out of the duration of a request in flight', async () => {
    const clockFile = join(folder, 'faketime-slow')
    writeFileSync(clockFile, `-${OFFSET_SECONDS}s\n`)
    const origin = await startApp(clockFile)

    // /slow takes 1.5 s, on timers that follow the monotonic clock; the wall clock steps meanwhile.
    const slow = fetch(`${origin}/slow`)
    await new Promise((resolve) => setTimeout(resolve, 300))
    writeFileSync(clockFile, '+0s\n')
    expect((await slow).status).toBe(200)
    let record: HttpTask = {}
    await waitUntil('the record of /slow', 15_000, async () => {
      record = JSON.parse((await redis.client.lindex('past_tasks', 0)) ?? '{}') as HttpTask
      return record.path === '/slow'
    })
    const durationMs = (parseIsoTime(record.ended_at) ?? 0) - (parseIsoTime(record.started_at) ?? 0)

    expect(record.path).toBe('/slow')
    expect(durationMs).toBeGreaterThanOrEqual(1_450)
    expect(durationMs).toBeLessThan(5_000)
  }, 30_000)
})

/** Starts the app with its wall clock read from `clockFile`, and returns its origin once it listens. */
async function startApp(clockFile: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', APP_SCRIPT], {
    cwd: process.cwd(),
    env: {
      ...process.env,
      TEST_REDIS_URL: redis.url,
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME_TIMESTAMP_FILE: clockFile,
      FAKETIME_NO_CACHE: '1',
      DONT_FAKE_MONOTONIC: '1',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  apps.push(child)
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  await waitUntil('the app to listen', 15_000, async () => /port \d+/.test(output))
  return `http://127.0.0.1:${/port (\d+)/.exec(output)?.[1]}`
}

/** Returns the path of libfaketime.so.1 in a multiarch library folder, or undefined. */
function findLibfaketime(): string | undefined {
  const libraryRoot = '/usr/lib'
  if (!existsSync(libraryRoot)) return undefined
  for (const entry of readdirSync(libraryRoot)) {
    const candidate = join(libraryRoot, entry, 'faketime', 'libfaketime.so.1')
    if (existsSync(candidate)) return candidate
  }
  return undefined
}
