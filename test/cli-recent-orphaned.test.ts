/**
 * `web-top-cli recent` with the active requests of a recording process
 * whose heartbeat expired: they are marked ORPHANED, as in `live`, and a
 * notice on standard error names `prune`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from './helpers/cli'
import { activeRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** Processor id prefix of a recorder that stopped: listed in `heartbeats`, with no heartbeat key. */
const CRASHED_PREFIX = 'web-1/111-0-1.'
/** Processor id prefix of a recorder whose heartbeat is current. */
const RUNNING_PREFIX = 'web-2/222-0-1.'

/** Returns the notice about the orphaned request, which names the prune command for the tracker at `url`. */
function notice(url: string): string {
  return (
    'web-top-cli: 1 active request is ORPHANED: the process that recorded it stopped without ending it ' +
    `(its heartbeat expired); web-top-cli prune --tracker-url ${url} ends it\n`
  )
}

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  const client = redis.client
  await client.sadd('heartbeats', CRASHED_PREFIX, RUNNING_PREFIX)
  await client.set(`heartbeat:${RUNNING_PREFIX}`, '{}', 'PX', 600_000)
  await client.hset('processors', `${CRASHED_PREFIX}0`, JSON.stringify(activeRecord('crashed', '/crashed')))
  await client.hset('processors', `${RUNNING_PREFIX}0`, JSON.stringify(activeRecord('running', '/running')))
})

afterAll(async () => {
  await redis?.close()
})

/** Returns the table row that contains `path`. */
function rowOf(stdout: string, path: string): string | undefined {
  return stdout.split('\n').find((line) => line.includes(path))
}

describe('recent with orphaned requests', () => {
  it('marks the orphaned row in the table', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'Path'])

    expect(result.code).toBe(0)
    const lines = result.stdout.split('\n')
    expect(lines[0]?.split(/\s{2,}/)).toEqual(['State', 'Path'])
    expect(rowOf(result.stdout, '/crashed')?.split(/\s{2,}/)).toEqual(['ORPHANED', '/crashed'])
    expect(rowOf(result.stdout, '/running')?.trimEnd().split(/\s{2,}/)).toEqual(['-', '/running'])
  })

  it('accepts State in --columns', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'State,Path'])

    expect(result.code).toBe(0)
    expect(result.stdout.split('\n')[0]?.split(/\s{2,}/)).toEqual(['State', 'Path'])
    expect(rowOf(result.stdout, '/crashed')?.split(/\s{2,}/)).toEqual(['ORPHANED', '/crashed'])
    expect(result.stderr).toBe(notice(redis.url))
  })

  it('rejects State as the only column', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'state'])

    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(
      /^web-top-cli: .*The list names no column but State, which is added by itself when a row is STALLED, slow or ORPHANED\. Valid columns: Cty, /,
    )
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
  })

  it('names prune on standard error', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url])

    expect(result.stderr).toBe(notice(redis.url))
  })

  it('keeps JSON records unchanged', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--json'])

    expect(result.code).toBe(0)
    const tasks = JSON.parse(result.stdout) as Array<Record<string, unknown>>
    expect(tasks.map((task) => task.path).sort()).toEqual(['/crashed', '/running'])
    expect(tasks.every((task) => !('orphaned' in task))).toBe(true)
    expect(result.stderr).toBe(notice(redis.url))
  })

  it('leaves out the State column without orphans', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'Path', '--path', '/running'])

    expect(result.stderr).toBe('')
    expect(result.stdout.split('\n')[0]?.trimEnd()).toBe('Path')
  })
})

describe('recent --all-prefixes with orphaned requests', () => {
  let prefixed: TestRedis

  beforeAll(async () => {
    prefixed = await startRedis()
    const client = prefixed.client
    await client.sadd('shop:heartbeats', CRASHED_PREFIX)
    await client.hset('shop:processors', `${CRASHED_PREFIX}0`, JSON.stringify(activeRecord('crashed', '/crashed')))
    await client.lpush('blog:past_tasks', 'not json')
  })

  afterAll(async () => {
    await prefixed?.close()
  })

  it('names the app in each notice', async () => {
    const result = await runCli(['recent', '--all-prefixes', '--tracker-url', prefixed.url])

    expect(result.code).toBe(0)
    expect(result.stderr.split('\n')).toEqual([
      'web-top-cli: "blog:": 1 record skipped (completed task at index 0: invalid JSON)',
      'web-top-cli: "shop:": 1 active request is ORPHANED: the process that recorded it stopped without ' +
        `ending it (its heartbeat expired); web-top-cli prune --tracker-url ${prefixed.url} --prefix shop: ends it`,
      '',
    ])
  })
})

describe('recent with orphaned requests and a password', () => {
  let passwordUrl: string

  beforeAll(async () => {
    await redis.client.acl('SETUSER', 'reader', 'reset', 'on', '>secret-pw', '~*', '&*', '+@all')
    passwordUrl = `redis://reader:secret-pw@127.0.0.1:${redis.port}`
  })

  it('puts a placeholder in --tracker-url', async () => {
    const result = await runCli(['recent', '--tracker-url', passwordUrl])

    expect(result.code).toBe(0)
    expect(result.stderr).toBe(
      'web-top-cli: 1 active request is ORPHANED: the process that recorded it stopped without ending it ' +
        `(its heartbeat expired); web-top-cli prune --tracker-url redis://reader:PASSWORD@127.0.0.1:${redis.port} ` +
        'ends it, with the password in place of PASSWORD (or with the URL in TOP_TRACKER_URL and no --tracker-url)\n',
    )
  })

  it.each([['recent'], ['check']])('leaves out a URL from TOP_TRACKER_URL in %s', async (command) => {
    const result = await runCli([command], { env: { TOP_TRACKER_URL: passwordUrl } })

    expect(result.code).toBe(0)
    expect(result.stderr).toBe(
      'web-top-cli: 1 active request is ORPHANED: the process that recorded it stopped without ending it ' +
        '(its heartbeat expired); web-top-cli prune ends it\n',
    )
  })
})
