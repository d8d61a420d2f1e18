/**
 * A record with an unknown field nested 5,000 levels deep, which
 * `JSON.parse` reads but `JSON.stringify` cannot write back: `recent
 * --json`, `tail --json` and the detail pane of `live` print it with the
 * deepest values as "[nested too deep]" instead of failing, and print a
 * note on standard error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_PRINTED_DEPTH } from '../src/cli/json-output'
import { runCli, startCli, startLiveSession } from './helpers/cli'
import { hasTmux, SHELL_PROMPT } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const DEPTH = 5_000

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-deep-records: the live test is skipped because tmux is not on PATH')

let redis: TestRedis

/** Returns a completed record whose field `a` is an array nested `DEPTH` levels deep. */
function deepRecord(path: string, endedAt = new Date()): string {
  const startedAt = new Date(endedAt.getTime() - 1_000)
  const fields = JSON.stringify({
    path,
    method: 'GET',
    started_at: startedAt.toISOString(),
    ended_at: endedAt.toISOString(),
    status_code: 200,
  })
  return `${fields.slice(0, -1)},"a":${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}}`
}

/** Returns how many levels of arrays start `value`. */
function arrayDepth(value: unknown): number {
  let depth = 0
  let current = value
  while (Array.isArray(current)) {
    depth++
    current = current[0]
  }
  return depth
}

/** Returns the first value under the arrays that start `value`. */
function innermostValue(value: unknown): unknown {
  let current = value
  while (Array.isArray(current)) current = current[0]
  return current
}

const CUT_NOTE = `web-top-cli: values nested deeper than ${MAX_PRINTED_DEPTH} levels are printed as "[nested too deep]"`

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.rpush('past_tasks', deepRecord('/deep'))
})

afterAll(async () => {
  await redis?.close()
})

describe('deeply nested records', () => {
  it('recent --json prints the record', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--json'])

    expect(result.stderr).toBe(`${CUT_NOTE}\n`)
    expect(result.code).toBe(0)
    const tasks = JSON.parse(result.stdout) as Array<{ path: string; a: unknown }>
    expect(tasks).toHaveLength(1)
    expect(tasks[0]?.path).toBe('/deep')
    // The array of tasks is the first level, the record the second.
    expect(arrayDepth(tasks[0]?.a)).toBe(MAX_PRINTED_DEPTH - 2)
    expect(innermostValue(tasks[0]?.a)).toBe('[nested too deep]')
  })

  it('recent --ndjson prints the record', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--ndjson'])

    expect(result.stderr).toBe(`${CUT_NOTE}\n`)
    expect(result.code).toBe(0)
    const task = JSON.parse(result.stdout) as { path: string; a: unknown }
    expect(task.path).toBe('/deep')
    expect(arrayDepth(task.a)).toBe(MAX_PRINTED_DEPTH - 1)
    expect(innermostValue(task.a)).toBe('[nested too deep]')
  })

  it('tail --json prints the record', async () => {
    const tail = startCli(['tail', '--tracker-url', redis.url, '--json'])
    try {
      const deadline = Date.now() + 10_000
      // Publishes until tail has subscribed and printed a line.
      while (!tail.stdout().includes('/tail-deep') && Date.now() < deadline) {
        await redis.client.publish('task_updates', deepRecord('/tail-deep'))
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      await tail.waitFor((stdout) => stdout.includes('/tail-deep'), 'the /tail-deep record')
      await redis.client.publish('task_updates', deepRecord('/after-deep'))
      await tail.waitFor((stdout) => stdout.includes('/after-deep'), 'the record after it')
    } finally {
      expect(await tail.stop()).toBe(130)
    }
    expect(tail.stderr()).not.toContain('RangeError')
    expect(tail.stderr()).toBe(`${CUT_NOTE}; this note is printed once\n`)
    const first = JSON.parse(tail.stdout().split('\n')[0] ?? '') as { path: string; a: unknown }
    expect(first.path).toBe('/tail-deep')
    expect(arrayDepth(first.a)).toBe(MAX_PRINTED_DEPTH - 1)
    expect(innermostValue(first.a)).toBe('[nested too deep]')
  })

  it('recent --all-prefixes --json says what it cut', async () => {
    const result = await runCli(['recent', '--all-prefixes', '--tracker-url', redis.url, '--json'])

    expect(result.stderr).toBe(`${CUT_NOTE}\n`)
    expect(result.code).toBe(0)
  })

  it('recent prints nested tags as JSON text', async () => {
    const tags = `{"plain":"x","nested":{"a":"b"},"deep":${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}}`
    const record = JSON.stringify({ path: '/tagged', method: 'GET', status_code: 200 }).slice(0, -1)
    await redis.client.rpush('{tags}:past_tasks', `${record},"tags":${tags}}`)

    const table = await runCli(['recent', '--prefix', '{tags}:', '--columns', 'Path,Tags', '--tracker-url', redis.url])
    const json = await runCli(['recent', '--prefix', '{tags}:', '--ndjson', '--tracker-url', redis.url])

    expect(table.code).toBe(0)
    expect(table.stdout).toContain('plain=x')
    expect(table.stdout).toContain('nested={"a":"b"}')
    expect(table.stdout).toContain('deep=[nested too deep]')
    expect(json.code).toBe(0)
    const task = JSON.parse(json.stdout) as { tags: Record<string, string> }
    expect(task.tags).toEqual({ plain: 'x', nested: '{"a":"b"}', deep: '[nested too deep]' })
  })
})

describe.skipIf(!TMUX_AVAILABLE)('deeply nested records in live (needs tmux)', () => {
  it('opens the detail pane of the record', async () => {
    const session = await startLiveSession(redis.url, (text) => text.includes('/deep') && text.includes('q quit'))
    try {
      session.sendKeys('Down')
      session.sendKeys('Enter')
      const screen = await session.waitForScreen(
        (text) => text.includes('Repeat with curl') || text.includes(SHELL_PROMPT.trimEnd()),
        15_000,
        'the detail pane',
      )

      expect(screen).not.toContain('live view failed')
      expect(screen).toContain('a: [[[')
      expect(screen).toContain('Repeat with curl')
    } finally {
      session.kill()
    }
  })
})
