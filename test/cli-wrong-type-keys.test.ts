/**
 * The built `web-top-cli` on a private Redis whose keys without task
 * records have the wrong type: a heartbeat that is a hash, a `heartbeats`
 * key that is a string, a `last_cleared_at` that is a list. `recent`,
 * `check` and `prune` agree that the processes of such heartbeats cannot
 * be judged: no request is marked ORPHANED and prune ends nothing. `check`
 * fails on each such key and names it, and `recent` and `live` name it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startLiveSession } from './helpers/cli'
import { hasTmux } from './helpers/pty'
import { activeRecord, completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { activeTableLines } from './helpers/screen-tables'

/** Processor id prefix of a recorder whose heartbeat key is a hash. */
const HASH_BEAT_PREFIX = 'vm/1-0-1.'
const HASH_BEAT_KEY = `hb:heartbeat:${HASH_BEAT_PREFIX}`
const HASH_BEAT_NOTICE =
  `web-top-cli: a heartbeat key has the wrong type ("${HASH_BEAT_KEY}", not a string), so web-top-cli ` +
  'cannot tell which recording processes stopped and does not mark their requests ORPHANED; ' +
  'check the --prefix value, or delete a key that no other program uses\n'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-wrong-type-keys: the live test is skipped because tmux is not on PATH')

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  const { client } = redis

  await client.sadd('hb:heartbeats', HASH_BEAT_PREFIX)
  await client.hset(HASH_BEAT_KEY, 'a', 'b')
  await client.hset('hb:processors', `${HASH_BEAT_PREFIX}0`, JSON.stringify(activeRecord('t1', '/hash-beat')))

  await client.set('set:heartbeats', 'not a set')
  await client.hset('set:processors', `${HASH_BEAT_PREFIX}0`, JSON.stringify(activeRecord('t2', '/string-beats')))

  await client.rpush('clear:last_cleared_at', 'not a string')
  await client.lpush('clear:past_tasks', JSON.stringify(completedRecord('/done', 200, 20)))
})

afterAll(async () => {
  await redis?.close()
})

describe('a heartbeat key of the wrong type', () => {
  it('marks no request ORPHANED in recent', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'hb:', '--columns', 'Path'])

    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Path\n/hash-beat\n')
    expect(result.stderr).toBe(HASH_BEAT_NOTICE)
  })

  it('fails check with the key named', async () => {
    const result = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'hb:'])

    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(new RegExp(`^FAIL: cannot read key ${escapeRegExp(HASH_BEAT_KEY)}: wrong key type; `))
    expect(result.stdout).not.toContain('orphaned')
    expect(result.stderr).toBe(HASH_BEAT_NOTICE)
  })

  it('is kept by prune', async () => {
    const result = await runCli(['prune', '--tracker-url', redis.url, '--prefix', 'hb:'])

    expect(result.code).toBe(0)
    expect(result.stdout.split('\n')).toEqual([
      `A heartbeat key has the wrong type ("${HASH_BEAT_KEY}", not a string), so web-top-cli cannot tell ` +
        'which recording processes stopped and keeps their tasks; check the --prefix value, or delete a key that no other program uses',
      'No stopped recording process found; nothing removed. ' +
        '(Tasks of writers without heartbeats, such as the Python tracker, are never pruned.)',
      '',
    ])
    expect(await redis.client.hkeys('hb:processors')).toEqual([`${HASH_BEAT_PREFIX}0`])
  })
})

describe.skipIf(!TMUX_AVAILABLE)('live with a heartbeat key of the wrong type (needs tmux)', () => {
  it('names the key in the status line', { timeout: 30_000 }, async () => {
    const session = await startLiveSession(redis.url, (screen) => screen.includes('/hash-beat'), {
      TOP_TRACKER_PREFIX: 'hb:',
    })
    try {
      const screen = await session.waitForScreen((text) => text.includes('wrong type'), 15_000, 'the notice')
      // The footer wraps between words, so the notice is read with its rows joined.
      const footer = screen.replace(/\s+/g, ' ')

      expect(footer).toContain(`a heartbeat key has the wrong type ("${HASH_BEAT_KEY}", not a string)`)
      expect(activeTableLines(screen).filter((line) => line.includes('/hash-beat'))).toEqual([
        expect.not.stringMatching(/ORPHANED/),
      ])
    } finally {
      session.kill()
    }
  })
})

describe('a heartbeats key of the wrong type', () => {
  const notice =
    'web-top-cli: a heartbeat key has the wrong type ("set:heartbeats", not a set), so web-top-cli ' +
    'cannot tell which recording processes stopped and does not mark their requests ORPHANED; ' +
    'check the --prefix value, or delete a key that no other program uses\n'

  it('is named by recent', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'set:', '--columns', 'Path'])

    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Path\n/string-beats\n')
    expect(result.stderr).toBe(notice)
  })

  it('fails check with the key named', async () => {
    const result = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'set:'])

    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^FAIL: cannot read key set:heartbeats: wrong key type; /)
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toBe(notice)
  })
})

describe('a last_cleared_at key of the wrong type', () => {
  const notice =
    'a key has the wrong type ("clear:last_cleared_at"), so web-top-cli ignores it; ' +
    'check the --prefix value, or delete a key that no other program uses'

  it('is named by recent', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'clear:', '--columns', 'Path'])

    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Path\n/done\n')
    expect(result.stderr).toBe(`web-top-cli: ${notice}\n`)
  })

  it('is named by recent --all-prefixes --json', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--all-prefixes', '--json'])

    expect(result.stderr).toContain(`web-top-cli: "clear:": ${notice}\n`)
  })

  it.skipIf(!TMUX_AVAILABLE)('is named in the status line of live (needs tmux)', { timeout: 30_000 }, async () => {
    // The status line is one row, cut to the width, so the pane is wide enough for the whole notice.
    const session = await startLiveSession(redis.url, (screen) => screen.includes('/done'), {
      TOP_TRACKER_PREFIX: 'clear:',
    }, 300)
    try {
      const screen = await session.waitForScreen((text) => text.includes('wrong type'), 15_000, 'the notice')
      expect(screen).toContain(notice)
    } finally {
      session.kill()
    }
  })

  it('fails check with the key named', async () => {
    const result = await runCli(['check', '--tracker-url', redis.url, '--prefix', 'clear:'])

    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/^FAIL: cannot read key clear:last_cleared_at: wrong key type; 1 request in the last 60s/)
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toBe('')
  })
})

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
