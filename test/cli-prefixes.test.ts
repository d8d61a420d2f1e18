/**
 * Several apps on one Redis: `prefixes` lists them and `recent --all-prefixes`
 * prints each app's requests under its own heading.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startCli, startLiveSession } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

function completedTask(path: string, status: number): string {
  return JSON.stringify({
    task_id: `${path}-1`,
    method: 'GET',
    path,
    started_at: '2026-12-04T15:00:00.000000+00:00',
    ended_at: '2026-12-04T15:00:00.250000+00:00',
    recorded_successfully: true,
    status_code: status,
  })
}

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.lpush('{shop}:past_tasks', completedTask('/cart', 200), completedTask('/pay', 502))
  await redis.client.hset('{shop}:processors', 'vm/1-0-1.0', completedTask('/slow', 200).replace(/"ended_at":"[^"]*"/, '"ended_at":null'))
  await redis.client.lpush('{blog}:past_tasks', completedTask('/posts/7', 404))
  await redis.client.lpush('past_tasks', completedTask('/legacy', 200))
})

afterAll(async () => {
  await redis?.close()
})

describe('prefixes command', () => {
  it('lists every prefix with its counts', async () => {
    const result = await runCli(['prefixes', '--tracker-url', redis.url])

    expect(result.code).toBe(0)
    expect(result.stdout.split('\n')).toEqual([
      '(no prefix)  0 active  1 completed',
      '"{blog}:"    0 active  1 completed',
      '"{shop}:"    1 active  2 completed',
      '',
    ])
  })

  it('prints JSON for scripts', async () => {
    const result = await runCli(['prefixes', '--json', '--tracker-url', redis.url])

    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual([
      { prefix: '', active: 0, completed: 1, skipped: 0 },
      { prefix: '{blog}:', active: 0, completed: 1, skipped: 0 },
      { prefix: '{shop}:', active: 1, completed: 2, skipped: 0 },
    ])
  })

  it('rejects --prefix', async () => {
    const result = await runCli(['prefixes', '--prefix', '{shop}:', '--tracker-url', redis.url])

    expect(result.code).toBe(2)
    expect(result.stderr).toBe('web-top-cli: prefixes lists every key prefix on the server: leave out --prefix\n')
  })

  it('ignores TOP_TRACKER_PREFIX', async () => {
    const result = await runCli(['prefixes', '--tracker-url', redis.url], { env: { TOP_TRACKER_PREFIX: '{shop}:' } })

    expect(result.code).toBe(0)
    expect(result.stdout.split('\n')).toHaveLength(4)
  })

  it('rejects a tracker without prefixes', async () => {
    const result = await runCli(['prefixes', '--tracker-url', 'http://127.0.0.1:9/web-top', '--api-key', 'x'.repeat(16)])

    expect(result.code).toBe(2)
    expect(result.stderr).toContain('only a Redis tracker has key prefixes')
  })

  it.each([['prune'], ['clear', '--yes']])('rejects %s on an HTTP tracker as a usage error', async (...command) => {
    // The command stops at the kind of the tracker, before any request.
    const result = await runCli([...command, '--tracker-url', 'http://127.0.0.1:9/web-top', '--api-key', 'x'.repeat(16)])

    expect(result.code).toBe(2)
    expect(result.stderr).toContain('the HTTP tracker endpoint is read-only')
  })
})

describe('Redis-only commands on an HTTP tracker without a key', () => {
  let endpoint: Server
  let endpointUrl = ''
  let requestsSeen = 0

  beforeAll(async () => {
    endpoint = createServer((_req, res) => {
      requestsSeen++
      res.writeHead(401).end()
    })
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve))
    endpointUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/web-top`
  })

  afterAll(async () => {
    await new Promise<void>((resolve) => endpoint.close(() => resolve()))
  })

  it.each([
    [['prune'], 'the HTTP tracker endpoint is read-only'],
    [['clear', '--yes'], 'the HTTP tracker endpoint is read-only'],
    [['prefixes'], 'only a Redis tracker has key prefixes'],
  ])('%j rejects the URL, not the missing key', async (command, reason) => {
    const result = await runCli([...command, '--tracker-url', endpointUrl])

    expect(result.code).toBe(2)
    expect(result.stderr).toContain(reason)
    expect(result.stderr).not.toContain('API key')
    expect(requestsSeen).toBe(0)
  })
})

describe('recent --all-prefixes', () => {
  it('prints each app under its own heading', async () => {
    const result = await runCli(['recent', '--all-prefixes', '--columns', 'Method,Path,Resp', '--tracker-url', redis.url])
    const lines = result.stdout.split('\n')

    expect(result.code).toBe(0)
    expect(lines.indexOf('== (no prefix) ==')).toBe(0)
    expect(lines.indexOf('== "{blog}:" ==')).toBeGreaterThan(0)
    expect(lines.indexOf('== "{shop}:" ==')).toBeGreaterThan(lines.indexOf('== "{blog}:" =='))
    const shop = lines.slice(lines.indexOf('== "{shop}:" =='))
    expect(shop.some((line) => /GET\s+\/slow/.test(line))).toBe(true)
    expect(shop.some((line) => /GET\s+\/pay\s+502/.test(line))).toBe(true)
    const blog = lines.slice(lines.indexOf('== "{blog}:" =='), lines.indexOf('== "{shop}:" =='))
    expect(blog.some((line) => /GET\s+\/posts\/7\s+404/.test(line))).toBe(true)
    expect(blog.some((line) => line.includes('/cart'))).toBe(false)
  })

  it('prints one JSON document with --json', async () => {
    const result = await runCli(['recent', '--all-prefixes', '--json', '--tracker-url', redis.url])

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const groups = JSON.parse(result.stdout) as Array<{ prefix: string; tasks: Array<{ path: string }> }>
    expect(groups.map((group) => group.prefix)).toEqual(['', '{blog}:', '{shop}:'])
    expect(groups.map((group) => group.tasks.map((task) => task.path))).toEqual([
      ['/legacy'],
      ['/posts/7'],
      ['/slow', '/pay', '/cart'],
    ])
  })

  it('names the prefix of each --ndjson line', async () => {
    const result = await runCli(['recent', '--all-prefixes', '--ndjson', '--tracker-url', redis.url])

    expect(result.code).toBe(0)
    const lines = result.stdout.trimEnd().split('\n')
    const records = lines.map((line) => JSON.parse(line) as { prefix: string; task: { path: string } })
    expect(records.map(({ prefix, task }) => `${prefix}${task.path}`)).toEqual([
      '/legacy',
      '{blog}:/posts/7',
      '{shop}:/slow',
      '{shop}:/pay',
      '{shop}:/cart',
    ])
  })

  it('documents the JSON shape in its help', async () => {
    const result = await runCli(['recent', '--help'])

    expect(result.stdout).toContain('{ prefix, tasks }')
    expect(result.stdout).toContain('{ prefix, task }')
  })

  it('cannot be combined with --prefix', async () => {
    const result = await runCli(['recent', '--all-prefixes', '--prefix', '{shop}:', '--tracker-url', redis.url])

    expect(result.code).toBe(2)
    expect(result.stderr).toBe('web-top-cli: --all-prefixes cannot be used with --prefix: leave out one of them\n')
  })

  it('wins over TOP_TRACKER_PREFIX', async () => {
    const result = await runCli(['recent', '--all-prefixes', '--json', '--tracker-url', redis.url], {
      env: { TOP_TRACKER_PREFIX: '{shop}:' },
    })

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const groups = JSON.parse(result.stdout) as Array<{ prefix: string }>
    expect(groups.map((group) => group.prefix)).toEqual(['', '{blog}:', '{shop}:'])
  })
})

describe('prefixes with counts of several widths', () => {
  let wideRedis: TestRedis

  beforeAll(async () => {
    wideRedis = await startRedis()
    const tasks = Array.from({ length: 12 }, (_, index) => completedTask(`/many/${index}`, 200))
    await wideRedis.client.lpush('past_tasks', ...tasks)
    await wideRedis.client.lpush('{a-longer-app}:past_tasks', completedTask('/one', 200), 'not json')
    await wideRedis.client.lpush('{🎉}:past_tasks', completedTask('/party', 200))
  })

  afterAll(async () => {
    await wideRedis?.close()
  })

  it('aligns prefixes, counts and skipped records', async () => {
    const result = await runCli(['prefixes', '--tracker-url', wideRedis.url])

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    // The emoji takes two terminal columns, so its line has one character fewer before the counts.
    expect(result.stdout.split('\n')).toEqual([
      '(no prefix)        0 active  12 completed',
      '"{a-longer-app}:"  0 active   1 completed  1 skipped (not readable)',
      '"{🎉}:"            0 active   1 completed',
      '',
    ])
  })
})

describe('prefixes with unreadable records', () => {
  let badRedis: TestRedis

  beforeAll(async () => {
    badRedis = await startRedis()
    await badRedis.client.lpush('bad:past_tasks', 'not json', '[1,2]', '42', JSON.stringify({ path: '/fine' }))
    await badRedis.client.hset('bad:processors', 'p1', '{"x":')
  })

  afterAll(async () => {
    await badRedis?.close()
  })

  it('counts what it could not read', async () => {
    const result = await runCli(['prefixes', '--tracker-url', badRedis.url])

    expect(result.code).toBe(0)
    expect(result.stdout).toBe('"bad:"  0 active  1 completed  4 skipped (not readable)\n')
  })
})

describe('prefixes with keys of the wrong type', () => {
  let wrongRedis: TestRedis

  beforeAll(async () => {
    wrongRedis = await startRedis()
    await wrongRedis.client.set('processors', 'not a hash')
    await wrongRedis.client.hset('{beat}:heartbeats', 'web-1/1-0-1.', '1')
    await wrongRedis.client.lpush('{mixed}:past_tasks', completedTask('/fine', 200))
    await wrongRedis.client.set('{mixed}:processors', 'not a hash')
  })

  afterAll(async () => {
    await wrongRedis?.close()
  })

  it('lists them with a note', async () => {
    const result = await runCli(['prefixes', '--tracker-url', wrongRedis.url])

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout.split('\n')).toEqual([
      '(no prefix)  0 active  0 completed  1 skipped (not readable)  key "processors": wrong key type, not a hash',
      '"{beat}:"    0 active  0 completed                            key "{beat}:heartbeats": wrong key type, not a set',
      '"{mixed}:"   0 active  1 completed  1 skipped (not readable)  key "{mixed}:processors": wrong key type, not a hash',
      '',
    ])
  })

  it('names them in JSON', async () => {
    const result = await runCli(['prefixes', '--json', '--tracker-url', wrongRedis.url])

    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual([
      { prefix: '', active: 0, completed: 0, skipped: 1, wrongTypeKeys: [{ key: 'processors', expected: 'hash' }] },
      {
        prefix: '{beat}:',
        active: 0,
        completed: 0,
        skipped: 0,
        wrongTypeKeys: [{ key: '{beat}:heartbeats', expected: 'set' }],
      },
      {
        prefix: '{mixed}:',
        active: 0,
        completed: 1,
        skipped: 1,
        wrongTypeKeys: [{ key: '{mixed}:processors', expected: 'hash' }],
      },
    ])
  })

  it('recent --all-prefixes prints only prefixes with a readable key', async () => {
    const result = await runCli(['recent', '--all-prefixes', '--json', '--tracker-url', wrongRedis.url])

    expect(result.code).toBe(0)
    const groups = JSON.parse(result.stdout) as Array<{ prefix: string }>
    expect(groups.map((group) => group.prefix)).toEqual(['{mixed}:'])
  })
})

describe('prefixes with control characters', () => {
  // C1 CSI (U+009B) and a right-to-left override, which JSON.stringify leaves raw.
  const hostilePrefix = '\u009b2J\u202e{evil}:'
  let hostileRedis: TestRedis

  beforeAll(async () => {
    hostileRedis = await startRedis()
    await hostileRedis.client.lpush(`${hostilePrefix}past_tasks`, completedTask('/x', 200))
  })

  afterAll(async () => {
    await hostileRedis?.close()
  })

  it('escapes them in the list', async () => {
    const result = await runCli(['prefixes', '--tracker-url', hostileRedis.url])

    expect(result.code).toBe(0)
    expect(result.stdout).toBe('"\\u009b2J\\u202e{evil}:"  0 active  1 completed\n')
  })

  it('escapes them in JSON', async () => {
    const result = await runCli(['prefixes', '--json', '--tracker-url', hostileRedis.url])

    expect(result.code).toBe(0)
    expect(result.stdout).not.toMatch(/[\u009b\u202e]/)
    expect(JSON.parse(result.stdout)).toEqual([{ prefix: hostilePrefix, active: 0, completed: 1, skipped: 0 }])
  })
})

describe('prefix without tracker keys', () => {
  let emptyRedis: TestRedis

  beforeAll(async () => {
    emptyRedis = await startRedis()
    await redis.client.set('{cleared}:last_cleared_at', '2026-12-04T15:00:00.000000+00:00')
  })

  afterAll(async () => {
    await redis.client.del('{cleared}:last_cleared_at')
    await emptyRedis?.close()
  })

  function expectedNote(url: string, where: string, fix: string): string {
    return (
      `web-top-cli: no app has recorded ${where} at ${url} (no processors, past_tasks, last_cleared_at or heartbeats key); ` +
      `${fix}, or list the prefixes in use with web-top-cli prefixes --tracker-url ${url}\n`
    )
  }

  it('check passes with a note on stderr', async () => {
    const result = await runCli(['check', '--max-stalled', '0', '--prefix', '{shop}', '--tracker-url', redis.url])

    expect(result.code).toBe(0)
    expect(result.stdout).toBe('OK: 0 stalled, 5xx -, p99 -; 0 requests in the last 60s\n')
    expect(result.stderr).toBe(
      expectedNote(redis.url, 'under the key prefix "{shop}"', "check --prefix against the app's keyPrefix"),
    )
  })

  it('recent prints the note after the table', async () => {
    const result = await runCli(['recent', '--prefix', 'zzz:', '--columns', 'Method,Path', '--tracker-url', redis.url])

    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Method  Path\n')
    expect(result.stderr).toBe(
      expectedNote(redis.url, 'under the key prefix "zzz:"', "check --prefix against the app's keyPrefix"),
    )
  })

  it('tail prints the note at its start', async () => {
    const tail = startCli(['tail', '--prefix', 'typo:', '--tracker-url', redis.url])
    try {
      await tail.waitFor((_stdout, stderr) => stderr.includes('\n'), 'the note on stderr')
      expect(tail.stderr()).toBe(
        expectedNote(redis.url, 'under the key prefix "typo:"', "check --prefix against the app's keyPrefix"),
      )
      expect(tail.stdout()).toBe('')
    } finally {
      expect(await tail.stop()).toBe(130)
    }
  })

  it('live shows the note on its screen', async () => {
    const session = await startLiveSession(`${redis.url}`, (screen) => screen.includes('no app has recorded'), {
      TOP_TRACKER_PREFIX: 'typo:',
    })
    try {
      const screen = session.capture()
      expect(screen).toContain('no app has recorded under the key prefix "typo:"')
    } finally {
      session.kill()
    }
  })

  it('recent --all-prefixes notes an empty server', async () => {
    const table = await runCli(['recent', '--all-prefixes', '--tracker-url', emptyRedis.url])
    expect(table.code).toBe(0)
    expect(table.stdout).toBe('')
    expect(table.stderr).toBe('web-top-cli: no tracker keys found on this server\n')

    const json = await runCli(['recent', '--all-prefixes', '--json', '--tracker-url', emptyRedis.url])
    expect(json.code).toBe(0)
    expect(json.stdout).toBe('[]\n')
    expect(json.stderr).toBe('web-top-cli: no tracker keys found on this server\n')

    const listed = await runCli(['prefixes', '--tracker-url', emptyRedis.url])
    expect(listed.stdout).toBe('No tracker keys found on this server.\n')
  })

  it('suggests --prefix when none is given', async () => {
    const result = await runCli(['recent', '--json', '--tracker-url', emptyRedis.url])

    expect(result.code).toBe(0)
    expect(result.stdout).toBe('[]\n')
    expect(result.stderr).toBe(
      expectedNote(emptyRedis.url, 'without a key prefix', 'if the app sets keyPrefix, pass it with --prefix'),
    )
  })

  // --prefix rejects control characters (exit 2), but a right-to-left override is no control character.
  it('escapes hiding characters of the prefix', async () => {
    const result = await runCli(['recent', '--json', '--prefix', '\u202e2J:', '--tracker-url', redis.url])

    expect(result.code).toBe(0)
    expect(result.stderr).toContain('under the key prefix "\\u202e2J:"')
    expect(result.stderr).not.toContain('\u202e')
  })

  it('lists a started app before its first request, without a note', async () => {
    await emptyRedis.client.sadd('fresh:heartbeats', 'web-1/4242-0-1.')
    try {
      const listed = await runCli(['prefixes', '--tracker-url', emptyRedis.url])
      expect(listed.code).toBe(0)
      expect(listed.stdout).toBe('"fresh:"  0 active  0 completed\n')

      const recent = await runCli(['recent', '--json', '--prefix', 'fresh:', '--tracker-url', emptyRedis.url])
      expect(recent.code).toBe(0)
      expect(recent.stdout).toBe('[]\n')
      expect(recent.stderr).toBe('')
    } finally {
      await emptyRedis.client.del('fresh:heartbeats')
    }
  })

  it.each([
    ['an app with only completed requests in --mode active', ['recent', '--mode', 'active', '--prefix', '{blog}:']],
    ['an app with requests', ['check', '--prefix', '{shop}:']],
    ['a cleared app', ['recent', '--prefix', '{cleared}:']],
  ])('prints no note for %s', async (_case, command) => {
    const result = await runCli([...command, '--tracker-url', redis.url])

    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
  })
})

describe('prefixes help', () => {
  it('leaves out --prefix, which it rejects', async () => {
    const result = await runCli(['prefixes', '--help'])

    expect(result.code).toBe(0)
    expect(result.stdout).toContain('--tracker-url <url>')
    expect(result.stdout).not.toContain('--prefix')
  })

  it('still lists --prefix for recent', async () => {
    const result = await runCli(['recent', '--help'])

    expect(result.stdout).toContain('--prefix <prefix>')
  })
})
