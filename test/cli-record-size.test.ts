/**
 * The reader's limit on one stored record (--max-record-size): the built
 * CLI against a private Redis that contains oversized records next to normal
 * ones, the Redis tracker's light read, an http:// tracker endpoint, and
 * `live` in a real pseudo-terminal (tmux).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseByteSize } from '../src/cli/options'
import { topTrackerEndpoint } from '../src/index'
import type { HttpTask } from '../src/task/http-task'
import { decodeTask, describeOversizedRecord } from '../src/task/wire'
import { DecodeCache } from '../src/trackers/decode-cache'
import { MemoryTracker } from '../src/trackers/memory-tracker'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { runCli, startCli, startLiveSession } from './helpers/cli'
import { hasTmux } from './helpers/pty'
import { activeRecord, completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const MIB = 1024 * 1024

/** Returns `task` as JSON text grown by a tag to at least `bytes` bytes. */
function padRecord(task: HttpTask, bytes: number): string {
  return JSON.stringify({ ...task, tags: { pad: 'x'.repeat(bytes) } })
}

/** Notice of `recent` and `check` for the two oversized records of the `size:` prefix. */
const SIZE_NOTICE =
  /^web-top-cli: 2 records skipped \(active task of processor "p-big": record of 10\.0 MiB is over the 256 KiB limit; completed task at index 0: record of 300\.\d KiB is over the 256 KiB limit\); pass a larger --max-record-size to read longer records$/m

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.hset('size:processors', 'p-ok', JSON.stringify(activeRecord('ok-1', '/size/ok-active')))
  await redis.client.hset('size:processors', 'p-big', padRecord(activeRecord('big-1', '/size/big-active'), 10 * MIB))
  await redis.client.lpush('size:past_tasks', JSON.stringify(completedRecord('/size/ok-done', 200, 20)))
  await redis.client.lpush('size:past_tasks', padRecord(completedRecord('/size/big-done', 200, 20), 300 * 1024))
  await redis.client.hset('only-big:processors', 'p-big', padRecord(activeRecord('big-2', '/only/big'), MIB))
  await redis.client.lpush('updates:past_tasks', JSON.stringify(completedRecord('/updates/ok', 200, 20)))
}, 30_000)

afterAll(async () => {
  await redis?.close()
})

describe('recent with oversized records', () => {
  it('prints the other rows and counts them', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'size:'])

    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/size/ok-active')
    expect(result.stdout).toContain('/size/ok-done')
    expect(result.stdout).not.toContain('/size/big-')
    expect(result.stderr).toMatch(SIZE_NOTICE)
  })

  it('leaves them out of --json', async () => {
    const result = await runCli(['recent', '--json', '--tracker-url', redis.url, '--prefix', 'size:'])

    expect(result.code).toBe(0)
    const tasks = JSON.parse(result.stdout) as HttpTask[]
    expect(tasks.map((task) => task.path)).toEqual(['/size/ok-active', '/size/ok-done'])
    expect(result.stderr).toMatch(SIZE_NOTICE)
  })

  it('reads them under a raised --max-record-size', async () => {
    const args = ['recent', '--json', '--max-record-size', '11MiB', '--tracker-url', redis.url, '--prefix', 'size:']
    const result = await runCli(args)

    expect(result.code).toBe(0)
    const tasks = JSON.parse(result.stdout) as HttpTask[]
    expect(tasks.map((task) => task.path).sort()).toEqual([
      '/size/big-active',
      '/size/big-done',
      '/size/ok-active',
      '/size/ok-done',
    ])
    expect(result.stderr).toBe('')
  })

  it('takes TOP_MAX_RECORD_SIZE', async () => {
    const result = await runCli(['recent', '--json', '--tracker-url', redis.url, '--prefix', 'size:'], {
      env: { TOP_MAX_RECORD_SIZE: '301KiB' },
    })

    expect(result.code).toBe(0)
    expect((JSON.parse(result.stdout) as HttpTask[]).map((task) => task.path)).toContain('/size/big-done')
    expect(result.stderr).toMatch(/^web-top-cli: 1 record skipped \(active task of processor "p-big": record of 10\.0 MiB is over the 301 KiB limit\)/m)
  })
})

describe('check with oversized records', () => {
  it('passes on the readable records', async () => {
    const result = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'size:'])

    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^OK: /)
    expect(result.stderr).toMatch(SIZE_NOTICE)
  })

  it('fails when every record is oversized', async () => {
    const result = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'only-big:'])

    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^FAIL: /)
    expect(result.stderr).toContain('record of 1.0 MiB is over the 256 KiB limit')
  })
})

describe('tail with an oversized update', () => {
  it('skips it and prints the next one', { timeout: 30_000 }, async () => {
    const tail = startCli(['tail', '--tracker-url', redis.url, '--prefix', 'tail:'])
    try {
      // Published until one shows, because the subscription starts after the process does.
      await publishUntilPrinted(tail, '/tail/first')
      await redis.client.publish('tail:task_updates', padRecord(completedRecord('/tail/big', 200, 20), 2 * MIB))
      await publishUntilPrinted(tail, '/tail/after')
      // stdout and stderr are separate pipes, so the note may be read after the line.
      await tail.waitFor((_stdout, stderr) => stderr.includes('skipped a message'), 'the note on the oversized message')

      expect(tail.stdout()).not.toContain('/tail/big')
      expect(tail.stderr()).toMatch(
        /^web-top-cli: skipped a message on the update stream \(record of 2\.0 MiB is over the 256 KiB limit\); pass a larger --max-record-size to read longer records; further ones are counted$/m,
      )
    } finally {
      expect(await tail.stop()).toBe(130)
    }
  })
})

async function publishUntilPrinted(tail: ReturnType<typeof startCli>, path: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!tail.stdout().includes(path)) {
    if (Date.now() > deadline) throw new Error(`${path} not printed.\nstdout:\n${tail.stdout()}\nstderr:\n${tail.stderr()}`)
    await redis.client.publish('tail:task_updates', JSON.stringify(completedRecord(path, 200, 20, 0)))
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

describe('--max-record-size validation', () => {
  it.each(['0', 'abc', '1KB', '1.5', '2k', '513MiB', '-1', ''])('rejects %j', async (value) => {
    const result = await runCli(['recent', '--max-record-size', value, '--tracker-url', redis.url])

    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain(
      'Expected a size from 1 byte to 512 MiB: a whole number of bytes (262144), or a number with KiB or MiB (256KiB, 1.5MiB).',
    )
  })

  it('rejects an invalid TOP_MAX_RECORD_SIZE', async () => {
    const result = await runCli(['check', '--tracker-url', redis.url], { env: { TOP_MAX_RECORD_SIZE: '1 GB' } })

    expect(result.code).toBe(2)
    expect(result.stderr).toContain('TOP_MAX_RECORD_SIZE')
    expect(result.stderr).toContain('Expected a size from 1 byte to 512 MiB')
  })

  it.each([
    ['262144', 262_144],
    ['1b', 1],
    ['256KiB', 262_144],
    ['1.5 MiB', 1_572_864],
    ['512mib', 512 * MIB],
  ])('parses %j', (value, bytes) => {
    expect(parseByteSize(value)).toBe(bytes)
  })

  it.each(['recent', 'live', 'tail', 'check', 'prefixes'])('is in the help of %s', async (command) => {
    const result = await runCli([command, '--help'])

    // Commander wraps the description to the width of the help.
    const help = result.stdout.replace(/\s+/g, ' ')
    expect(result.code).toBe(0)
    expect(help).toContain('--max-record-size <size> largest task record to read, in UTF-8 bytes as Redis counts them')
    expect(help).toContain('(default: 256KiB, env: TOP_MAX_RECORD_SIZE)')
  })
})

describe('decodeTask size limit', () => {
  it('applies only a limit given', () => {
    const text = padRecord(activeRecord('a', '/a'), 2 * MIB)

    expect(decodeTask(text).ok).toBe(true)
    expect(decodeTask(text, { maxRecordBytes: 2 * MIB }).ok).toBe(false)
  })

  it('counts UTF-8 bytes, not UTF-16 code units', () => {
    // 100,000 euro signs take 300,000 bytes in UTF-8.
    const text = JSON.stringify({ ...activeRecord('a', '/a'), tags: { pad: '€'.repeat(100_000) } })
    const result = decodeTask(text, { maxRecordBytes: 256 * 1024 })

    expect(text.length).toBeLessThan(256 * 1024)
    expect(result).toEqual({ ok: false, reason: describeOversizedRecord(Buffer.byteLength(text), 256 * 1024) })
    expect(result.ok).toBe(false)
    expect(result.ok ? undefined : result.reason).toMatch(/^record of 293\.\d KiB is over the 256 KiB limit$/)
  })

  it('gives bytes when the rounded size would not show the excess', () => {
    expect(describeOversizedRecord(MIB + 1, MIB)).toBe('record of 1,048,577 bytes is over the 1 MiB limit')
    expect(describeOversizedRecord(1_000_001, 1_000_000)).toBe('record of 976.6 KiB is over the limit of 1,000,000 bytes')
  })

  it('words a limit in bytes after the noun', () => {
    expect(describeOversizedRecord(2, 1)).toBe('record of 2 bytes is over the limit of 1 byte')
    expect(describeOversizedRecord(5_000, 1_000)).toBe('record of 4.9 KiB is over the limit of 1,000 bytes')
  })
})

describe('RedisTracker light read of oversized records', () => {
  it('never fetches them', async () => {
    const tracker = new RedisTracker({ url: redis.url, keyPrefix: 'light-size:' })
    const monitor = await redis.client.monitor()
    const fetchedFields: string[] = []
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'hmget') fetchedFields.push(...args.slice(2))
    })
    try {
      await redis.client.hset('light-size:processors', 'p-ok', JSON.stringify(activeRecord('ok', '/ok')))
      await redis.client.hset('light-size:processors', 'p-big', padRecord(activeRecord('big', '/big'), MIB))
      const cache = new DecodeCache()
      const readOptions = { decodeCache: cache, changedOnly: true, verifySlices: 1, maxRecordBytes: 256 * 1024 }

      // With one slice, every record is verified, and so fetched again, at each light read.
      for (let read = 0; read < 2; read++) {
        const snapshot = await tracker.read(readOptions)
        expect(snapshot.reused).toBeDefined()
        expect([...snapshot.active.keys()]).toEqual(['p-ok'])
        expect(snapshot.skipReasons).toEqual([
          'active task of processor "p-big": record of 1.0 MiB is over the 256 KiB limit',
        ])
      }
      await waitForMonitor(fetchedFields)
      expect(fetchedFields).toContain('p-ok')
      expect(fetchedFields).not.toContain('p-big')
    } finally {
      monitor.disconnect()
      await tracker.close()
    }
  })

  it('decodes again under a lower limit', async () => {
    const tracker = new RedisTracker({ url: redis.url, keyPrefix: 'limit-change:' })
    try {
      await redis.client.hset('limit-change:processors', 'p-big', padRecord(activeRecord('big', '/big'), MIB))
      const cache = new DecodeCache()
      const raised = await tracker.read({ decodeCache: cache, changedOnly: true, maxRecordBytes: 2 * MIB })
      expect([...raised.active.keys()]).toEqual(['p-big'])

      // The record's length is unchanged, so a cache that kept its task would reuse it.
      const lowered = await tracker.read({ decodeCache: cache, changedOnly: true, maxRecordBytes: 256 * 1024 })
      expect(lowered.active.size).toBe(0)
      expect(lowered.skipped).toBe(1)
    } finally {
      await tracker.close()
    }
  })
})

/** Waits until MONITOR has reported the HMGET of the reads, which it sends after their replies. */
async function waitForMonitor(fetchedFields: readonly string[]): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!fetchedFields.includes('p-ok') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('recent on an http:// tracker with an oversized record', () => {
  const apiKey = 'record-size-test-key-0123456789'
  const tracker = new MemoryTracker()
  let server: Server
  let endpointUrl = ''

  beforeAll(async () => {
    tracker.recordStart('p-ok', JSON.stringify(activeRecord('ok', '/http/ok')))
    tracker.recordStart('p-big', padRecord(activeRecord('big', '/http/big'), MIB))
    const app = express()
    app.all('/web-top', topTrackerEndpoint({ apiKey, tracker }))
    server = createServer(app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    endpointUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/web-top`
  })

  afterAll(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  it('skips it with its size', async () => {
    const result = await runCli(['recent', '--json', '--tracker-url', endpointUrl], { env: { TOP_WEB_API_KEY: apiKey } })

    expect(result.code).toBe(0)
    expect((JSON.parse(result.stdout) as HttpTask[]).map((task) => task.path)).toEqual(['/http/ok'])
    expect(result.stderr).toMatch(
      /^web-top-cli: 1 record skipped \(active task of processor "p-big": record of 1\.0 MiB is over the 256 KiB limit\); pass a larger --max-record-size/m,
    )
  })

  it('is reported once by tail', { timeout: 30_000 }, async () => {
    const tail = startCli(['tail', '--tracker-url', endpointUrl, '--refresh-rate', '0.2'], { TOP_WEB_API_KEY: apiKey })
    try {
      // tail prints requests that ended after it started, so one is ended until tail prints it.
      for (let attempt = 0; !tail.stdout().includes('/http/first') && attempt < 50; attempt++) {
        tracker.recordEnd(`p-first-${attempt}`, JSON.stringify(completedRecord('/http/first', 200, 20, 0)))
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      await tail.waitFor((stdout) => stdout.includes('/http/first'), '/http/first')
      tracker.recordEnd('p-big-done', padRecord(completedRecord('/http/big-done', 200, 20, 0), 300 * 1024))
      tracker.recordEnd('p-after', JSON.stringify(completedRecord('/http/after', 200, 20, 0)))
      // stdout and stderr are separate pipes, so the note may be read after the line.
      await tail.waitFor(
        (stdout, stderr) => stdout.includes('/http/after') && stderr.includes('record skipped'),
        '/http/after and the note on the skipped record',
      )
      // More polls read the same list.
      await new Promise((resolve) => setTimeout(resolve, 600))

      expect(tail.stdout()).not.toContain('/http/big-done')
      const notices = tail.stderr().match(/records? skipped/g) ?? []
      expect(notices).toHaveLength(1)
      expect(tail.stderr()).toMatch(
        /^web-top-cli: 1 record skipped \(completed task at index 1: record of 300\.\d KiB is over the 256 KiB limit\); pass a larger --max-record-size to read longer records; this note is printed once$/m,
      )
      expect(tail.stderr()).not.toContain('p-big')
    } finally {
      expect(await tail.stop()).toBe(130)
    }
  })
})

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-record-size: the terminal test is skipped because tmux is not on PATH')

describe.skipIf(!TMUX_AVAILABLE)('live with oversized records (needs tmux)', () => {
  it('shows the skipped notice in the footer', { timeout: 30_000 }, async () => {
    // The status line is one row, cut to the width, so the pane is wide enough for the whole notice.
    const session = await startLiveSession(redis.url, (screen) => screen.includes('/size/ok-active'), {
      TOP_TRACKER_PREFIX: 'size:',
    }, 300)
    try {
      const screen = await session.waitForScreen((text) => text.includes('records skipped'), 15_000, 'the notice')
      expect(screen).toMatch(/2 records skipped \(active task of processor "p-big": record of 10\.0 MiB is over the 256 KiB limit; completed task at index 0: record of 300\.\d KiB is over the 256 KiB limit\)/)
      expect(screen).toContain('/size/ok-done')
      expect(screen).not.toContain('/size/big-')
    } finally {
      session.kill()
    }
  })

  it('shows an oversized update in the footer', { timeout: 30_000 }, async () => {
    const session = await startLiveSession(redis.url, (screen) => screen.includes('/updates/ok'), {
      TOP_TRACKER_PREFIX: 'updates:',
    })
    try {
      // Published only, as a record longer than the limit would be before its list write.
      const big = padRecord(completedRecord('/updates/big', 200, 20), 300 * 1024)
      await redis.client.publish('updates:task_updates', big)
      const screen = await session.waitForScreen((text) => text.includes('task_updates skipped'), 15_000, 'the notice')
      const footer = screen.replace(/\s+/g, ' ')
      expect(footer).toMatch(
        /1 message on task_updates skipped \(record of 300\.\d KiB is over the 256 KiB limit\); pass a larger --max-record-size/,
      )
      expect(screen).not.toContain('/updates/big')
    } finally {
      session.kill()
    }
  })
})
