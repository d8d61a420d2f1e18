/**
 * The package loaded twice in one process, as CommonJS and as an ES
 * module, from the built `dist/`: what one copy records on `memory://`
 * the other copy reads, one copy's tracker endpoint serves what the other
 * records to Redis, and the two copies record to Redis side by side.
 */
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForActive } from './helpers/records'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

const ROOT = resolve(__dirname, '..')
const FIXTURES = resolve(__dirname, 'fixtures/dual-package')

describe('dual package', () => {
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(async () => {
    await redis.close()
  })

  it('shares memory:// across both builds', async () => {
    const script = resolve(FIXTURES, 'record-esm-read-cjs.mjs')
    const { stdout } = await promisify(execFile)(process.execPath, [script], { cwd: ROOT, timeout: 20_000 })
    const result = JSON.parse(stdout) as { separateCopies: boolean; sameTracker: boolean; completedPaths: string[] }

    expect(result.separateCopies).toBe(true)
    expect(result.sameTracker).toBe(true)
    expect(result.completedPaths).toEqual(['/three', '/two', '/one'])
  })

  it('serves the Redis tracker of the other copy', async () => {
    const script = resolve(FIXTURES, 'endpoint-esm-recorder-cjs.mjs')
    const { stdout } = await promisify(execFile)(process.execPath, [script], {
      cwd: ROOT,
      env: { ...process.env, WEB_TOP_TEST_REDIS_URL: redis.url },
      timeout: 20_000,
    })
    const result = JSON.parse(stdout) as { separateCopies: boolean; status: number; completedPaths: unknown }

    expect(result.separateCopies).toBe(true)
    expect(result.status).toBe(200)
    expect(result.completedPaths).toEqual(['/recorded'])
  })

  it('serves one Redis for both copies', async () => {
    await redis.client.flushall()
    const script = resolve(FIXTURES, 'endpoint-esm-recorder-cjs.mjs')
    const { stdout } = await promisify(execFile)(process.execPath, [script], {
      cwd: ROOT,
      env: { ...process.env, WEB_TOP_TEST_REDIS_URL: redis.url, WEB_TOP_TEST_BOTH_COPIES: '1' },
      timeout: 20_000,
    })
    const result = JSON.parse(stdout) as { status: number; completedPaths: string[] }

    expect(result.status).toBe(200)
    // Each copy records the request (README: one import style per app).
    expect(result.completedPaths).toEqual(['/recorded', '/recorded'])
    await redis.client.flushall()
  })

  it('gives each copy its own processor ids and ends on SIGTERM', async () => {
    const child = spawn(process.execPath, [resolve(FIXTURES, 'hold-in-both-copies.mjs')], {
      cwd: ROOT,
      env: { ...process.env, WEB_TOP_TEST_REDIS_URL: redis.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer]
      const result = JSON.parse(line.toString()) as { separateCopies: boolean; prefixes: string[] }
      expect(result.separateCopies).toBe(true)
      expect(new Set(result.prefixes).size).toBe(2)

      // Both held requests are active at once, each under its own entry.
      const active = await waitForActive(redis.client, 2)
      expect(active.map((task) => task.path)).toEqual(['/held', '/held'])

      child.kill('SIGTERM')
      const [code, signal] = await exited
      expect(signal).toBe('SIGTERM')
      expect(code).toBeNull()
    } finally {
      child.kill('SIGKILL')
    }

    const stored = await readStoredTasks(redis.client)
    expect(stored.processors).toEqual({})
    expect(stored.pastTasks.map((task) => task.tags?.['web_top.outcome'])).toEqual(['recorder_closed', 'recorder_closed'])
  })
})
