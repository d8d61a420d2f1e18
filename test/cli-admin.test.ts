/**
 * `web-top-cli check`, `clear` and `prune` as child processes against a
 * private Redis, and the recording processes that `live` shows from
 * heartbeats.
 */
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { runClear } from '../src/cli/clear'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import type { Heartbeat } from '../src/trackers/heartbeat'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { CLI_PATH, CLI_VARIABLES, runCli } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { completedRecord, recorderStartText } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
let writer: RedisTracker
let sequence = 0

beforeAll(async () => {
  redis = await startRedis()
  writer = new RedisTracker({ url: redis.url })
})

afterAll(async () => {
  await writer?.close()
  await redis?.close()
})

beforeEach(async () => {
  await redis.client.flushdb()
})

describe('check', () => {
  beforeEach(async () => {
    for (let i = 0; i < 18; i++) writer.recordEnd(`ok-${i}`, JSON.stringify(completedRecord('/ok', 200, 100 + i * 10)))
    writer.recordEnd('fail-1', JSON.stringify(completedRecord('/fail', 500, 50)))
    writer.recordEnd('fail-2', JSON.stringify(completedRecord('/fail', 503, 2_400)))
    // Ended long before the window: not counted.
    writer.recordEnd('old', JSON.stringify(completedRecord('/old', 500, 10, 600_000)))
    writer.recordStart('stuck', JSON.stringify(active('/stuck', 45_000)))
    await writer.flush()
  })

  it('exits 0 with a one-line summary when every limit holds', async () => {
    const result = await runCli([
      'check',
      '--tracker-url',
      redis.url,
      '--max-stalled',
      '1',
      '--max-error-rate',
      '10%',
      '--max-p99',
      '3s',
    ])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^OK: 1 stalled, 5xx 10\.0%, p99 2\.40s; 20 requests in the last 60s/)
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1)
  })

  it('leaves orphaned requests out of the stalled count', async () => {
    // A prefix of its own: the writer repairs the entries of a prefix whose heartbeat it writes again late.
    writer.writeHeartbeat(heartbeat('web-3/333-0-1.', 333), 300)
    writer.recordStart('web-3/333-0-1.0', JSON.stringify(active('/orphan', 45_000, 333)))
    await writer.flush()
    await sleep(500)

    const result = await runCli(['check', '--tracker-url', redis.url, '--max-stalled', '1'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^OK: 1 stalled, .*; 1 orphaned left out\n$/)
    expect(result.stderr).toBe(
      'web-top-cli: 1 active request is ORPHANED: the process that recorded it stopped without ending it ' +
        `(its heartbeat expired); web-top-cli prune --tracker-url ${redis.url} ends it\n`,
    )
  })

  it('exits 1 naming each broken limit', async () => {
    const result = await runCli([
      'check',
      '--tracker-url',
      redis.url,
      '--max-stalled',
      '0',
      '--max-error-rate',
      '0.05',
      '--max-p99',
      '1000',
    ])
    expect(result.code).toBe(1)
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stdout).toMatch(/^FAIL: 1 request running 30\.0s or longer \(max 0\): GET \/stuck for 4\d\.\ds; /)
    expect(result.stdout).toContain('5xx share 10.0% (max 5.0%)')
    expect(result.stdout).toMatch(/p99 2\.40s \(max 1\.00s\)/)
  })

  it('takes the window and the stall time from options', async () => {
    const result = await runCli([
      'check',
      '--tracker-url',
      redis.url,
      '--max-stalled',
      '0',
      '--stall-after',
      '60',
      '--window',
      '900',
    ])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^OK: 0 stalled, 5xx 14\.3%, p99 \S+; 21 requests in the last 900s/)
  })

  it('rejects an invalid limit with exit code 2', async () => {
    const result = await runCli(['check', '--tracker-url', redis.url, '--max-error-rate', '150%'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('Expected a share from 0 to 1')
  })
})

describe('clear', () => {
  beforeEach(async () => {
    writer.recordEnd('done', JSON.stringify(completedRecord('/done', 200, 10)))
    writer.recordStart('running', JSON.stringify(active('/running', 100)))
    await writer.flush()
  })

  it('refuses without --yes when standard input is not a terminal', async () => {
    const result = await runCli(['clear', '--tracker-url', redis.url])
    expect(result.code).toBe(2)
    expect(result.stderr).toBe(
      'web-top-cli: Refusing to clear the tracker without --yes: standard input is not a terminal to ask on\n',
    )
    expect(await redis.client.llen('past_tasks')).toBe(1)
  })

  it('names the prefix it cleared', async () => {
    await redis.client.lpush('shop:past_tasks', '{}')
    const unprefixed = await redis.client.llen('past_tasks')
    const result = await runCli(['clear', '--tracker-url', redis.url, '--prefix', 'shop:', '--yes'])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(`Cleared the active and completed tasks at ${redis.url} (key prefix "shop:").\n`)
    expect(await redis.client.exists('shop:past_tasks')).toBe(0)
    expect(await redis.client.llen('past_tasks')).toBe(unprefixed)
    expect(unprefixed).toBeGreaterThan(0)
  })

  it('writes nothing under an unused prefix', async () => {
    const result = await runCli(['clear', '--tracker-url', redis.url, '--prefix', 'typo:', '--yes'])

    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    expect(result.stdout).toBe(
      `Nothing to clear at ${redis.url} (key prefix "typo:"): none of its processors, past_tasks, ` +
        "last_cleared_at and heartbeats keys exists, so nothing was written; check --prefix against the app's " +
        `keyPrefix, or list the prefixes in use with web-top-cli prefixes --tracker-url ${redis.url}.\n`,
    )
    expect(await redis.client.keys('typo:*')).toEqual([])
    const prefixes = await runCli(['prefixes', '--tracker-url', redis.url])
    expect(prefixes.stdout).not.toContain('typo:')
  })

  it('clears a prefix with only a heartbeats key', async () => {
    await redis.client.sadd('beat:heartbeats', 'web-1/1-0-1.')

    const result = await runCli(['clear', '--tracker-url', redis.url, '--prefix', 'beat:', '--yes'])

    expect(result.code).toBe(0)
    expect(result.stdout).toBe(`Cleared the active and completed tasks at ${redis.url} (key prefix "beat:").\n`)
    expect(await redis.client.get('beat:last_cleared_at')).toMatch(/^\d{4}-/)
  })

  it('clears with --yes', async () => {
    const result = await runCli(['clear', '--tracker-url', redis.url, '--yes'])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(`Cleared the active and completed tasks at ${redis.url} (no key prefix).\n`)
    expect(await redis.client.exists('past_tasks', 'processors')).toBe(0)
    expect(await redis.client.get('last_cleared_at')).toMatch(/^\d{4}-/)
  })

  it('clears a Redis at its maxmemory', async () => {
    const full = await startRedis(['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'])
    try {
      // One record per command: the query buffer of a larger command counts
      // against maxmemory while it runs, and leaves room once rejected.
      const record = JSON.stringify(completedRecord('/x'.repeat(2_000), 200, 10))
      let rejected = ''
      while (rejected === '') {
        await full.client.lpush('past_tasks', record).catch((err: Error) => {
          rejected = err.message
        })
      }
      expect(rejected).toMatch(/^OOM/)
      // Small pushes until even a small SET is rejected, as the clear's would be.
      const probe = () => full.client.set('probe', 'x').catch((err: Error) => err.message)
      for (let tries = 0; (await probe()) === 'OK' && tries < 1_000; tries++) {
        await full.client.lpush('filler', 'x'.repeat(100)).catch(() => {})
      }
      expect(await probe()).toMatch(/^OOM/)

      const result = await runCli(['clear', '--tracker-url', full.url, '--yes'])
      expect(result.stderr).toBe('')
      expect(result.code).toBe(0)
      expect(await full.client.exists('past_tasks')).toBe(0)
      expect(await full.client.get('last_cleared_at')).toMatch(/^\d{4}-/)
    } finally {
      await full.close()
    }
  })

  // C1 CSI (U+009B) and a right-to-left override, which JSON.stringify leaves raw.
  const hostilePrefix = '\u009b2J\u202e{evil}:'
  const escapedPrefix = '(key prefix "\\u009b2J\\u202e{evil}:")'

  it.each([
    ['no prefix', undefined, '(no key prefix)'],
    ['a prefix', 'shop:', '(key prefix "shop:")'],
    ['a prefix with control characters', hostilePrefix, escapedPrefix],
  ])('names the URL and %s in the question', async (_case, keyPrefix, named) => {
    // A prefix without tracker keys has nothing to clear, so there would be no question.
    if (keyPrefix !== undefined) await redis.client.lpush(`${keyPrefix}past_tasks`, '{}')
    const stdin = Object.assign(new PassThrough(), { isTTY: true })
    const stdout = new PassThrough()
    let output = ''
    stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      if (output.includes('[y/N]')) stdin.write('n\n')
    })
    const options = { trackerUrl: redis.url, keyPrefix, apiKey: undefined, yes: false }
    const code = await runClear(options, { stdin, stdout })
    expect(code).toBe(1)
    expect(output).toContain(`Delete every active and completed task at ${redis.url} ${named}? [y/N] `)
    expect(output).not.toMatch(/[\u009b\u202e]/)
    expect(output).toContain('Not cleared.')
    expect(await redis.client.llen('past_tasks')).toBe(1)
  })

  it('escapes control characters of the prefix it cleared', async () => {
    // --prefix rejects control characters (exit 2), so runClear gets the prefix directly.
    await redis.client.lpush(`${hostilePrefix}past_tasks`, '{}')
    const stdout = new PassThrough()
    let output = ''
    stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    const options = { trackerUrl: redis.url, keyPrefix: hostilePrefix, apiKey: undefined, yes: true }
    const code = await runClear(options, { stdin: new PassThrough(), stdout })
    expect(code).toBe(0)
    expect(output).toBe(`Cleared the active and completed tasks at ${redis.url} ${escapedPrefix}.\n`)
    expect(await redis.client.exists(`${hostilePrefix}past_tasks`)).toBe(0)
  })

  it('takes the end of input as no', async () => {
    const stdin = Object.assign(new PassThrough(), { isTTY: true })
    const stdout = new PassThrough()
    let output = ''
    stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      if (output.includes('[y/N]')) stdin.end()
    })
    const options = { trackerUrl: redis.url, keyPrefix: undefined, apiKey: undefined, yes: false }
    const code = await runClear(options, { stdin, stdout })
    expect(code).toBe(1)
    expect(output).toContain('Not cleared.')
    expect(await redis.client.llen('past_tasks')).toBe(1)
  })

  it.skipIf(!hasTmux())('asks y/N on a terminal', async () => {
    const session = TmuxSession.start({ width: 100, height: 10, unset: CLI_VARIABLES })
    try {
      const command = `node ${quoteForShell(CLI_PATH)} clear --tracker-url ${redis.url}`
      session.type(command, true)
      await session.waitForScreen((text) => text.includes('[y/N]'), 15_000, 'the question')
      session.type('n', true)
      await session.waitForScreen((text) => text.includes('Not cleared.'), 15_000, 'the refusal')
      expect(await redis.client.llen('past_tasks')).toBe(1)

      session.type('clear', true)
      session.type(command, true)
      await session.waitForScreen((text) => text.includes('[y/N]'), 15_000, 'the question again')
      session.sendKeys('C-d')
      const screen = await session.waitForScreen((text) => text.includes('Not cleared.'), 15_000, 'the refusal on Ctrl-D')
      expect(screen).not.toContain('unexpected error')
      expect(await redis.client.llen('past_tasks')).toBe(1)

      session.type(command, true)
      await session.waitForScreen((text) => text.split('[y/N]').length === 3, 15_000, 'the second question')
      session.type('y', true)
      await session.waitForScreen((text) => text.includes('Cleared the active'), 15_000, 'the clear')
      await session.waitForScreen((text) => text.trimEnd().endsWith(SHELL_PROMPT.trimEnd()), 15_000, 'the prompt')
      expect(await redis.client.llen('past_tasks')).toBe(0)
    } finally {
      session.kill()
    }
  })
})

describe('prune and the recording processes', () => {
  it('names a heartbeats key of the wrong type', async () => {
    await redis.client.set('pfx:heartbeats', 'not a set')
    const result = await runCli(['prune', '--tracker-url', redis.url, '--prefix', 'pfx:'])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(
      `web-top-cli: Cannot prune the tracker at ${redis.url}: the key "pfx:heartbeats" is a string, not a set ` +
        '(WRONGTYPE); check the --prefix value, or delete that key if no other program uses it\n',
    )
  })

  it('removes the tasks of a recorder whose heartbeat stopped', async () => {
    writer.writeHeartbeat(heartbeat('web-1/111-0-1.', 111), 300)
    writer.writeHeartbeat(heartbeat('web-2/222-0-1.', 222), 60_000)
    const orphan = active('/orphan', 1_000, 111)
    writer.recordStart('web-1/111-0-1.0', recorderStartText(orphan))
    writer.recordStart('web-2/222-0-1.0', JSON.stringify(active('/alive', 1_000, 222)))
    await writer.flush()
    await sleep(500)

    // live shows the stopped process as gone and its request as orphaned.
    const live = await runCli(['live', '--tracker-url', redis.url, '--refresh-rate', '0.3'], {
      interruptWhen: (stdout) => stdout.includes('Recording processes (') && /^ORPHANED /m.test(stdout),
    })
    const frame = live.stdout.trimEnd().split('\n\n').at(-1) ?? ''
    expect(frame).toContain('Recording processes (1 up, 1 gone)')
    expect(frame).toMatch(/^web-2\/222 +up +\S+ +3\.50ms +20 MiB +60 MiB +1 +42 +0 +0$/m)
    expect(frame).toMatch(/^web-1\/111 +gone( +-){7} +1$/m)
    expect(frame).toMatch(/^ORPHANED .*\/orphan/m)

    const result = await runCli(['prune', '--tracker-url', redis.url])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(
      'Removed 1 stopped recorder from the heartbeat list and its 1 active task: web-1/111\n' +
        '1 task moved to the completed tasks as ended by cleanup ' +
        '(recorded_successfully false, tag web_top.outcome: process_stopped)\n',
    )
    expect(await redis.client.hkeys('processors')).toEqual(['web-2/222-0-1.0'])
    const recent = await runCli(['recent', '--json', '--tracker-url', redis.url])
    const ended = (JSON.parse(recent.stdout) as HttpTask[]).find((task) => task.path === '/orphan')
    expect(ended?.task_id).toBe(orphan.task_id)
    expect(ended?.path).toBe('/orphan')
    expect(ended?.recorded_successfully).toBe(false)
    expect(ended?.ended_at).toMatch(/^\d{4}-\d{2}-\d{2}T/)
    expect(ended?.tags?.['web_top.outcome']).toBe('process_stopped')

    const again = await runCli(['prune', '--tracker-url', redis.url])
    expect(again.stdout).toMatch(/^No stopped recording process found; nothing removed\./)
  })

  it('removes a recorder without tasks', async () => {
    // As after a close whose cleanup timed out: the heartbeat is still listed.
    writer.writeHeartbeat(heartbeat('web-4/444-0-1.', 444), 300)
    await writer.flush()
    await sleep(500)

    const result = await runCli(['prune', '--tracker-url', redis.url])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Removed 1 stopped recorder from the heartbeat list, with no active tasks left: web-4/444\n')
    expect(await redis.client.smembers('heartbeats')).not.toContain('web-4/444-0-1.')
  })

  it('counts tasks of several recorders together', async () => {
    writer.writeHeartbeat(heartbeat('web-5/555-0-1.', 555), 300)
    writer.writeHeartbeat(heartbeat('web-6/666-0-1.', 666), 300)
    writer.recordStart('web-5/555-0-1.0', recorderStartText(active('/orphan-a', 1_000, 555)))
    writer.recordStart('web-5/555-0-1.1', recorderStartText(active('/orphan-b', 1_000, 555)))
    await writer.flush()
    await sleep(500)

    const result = await runCli(['prune', '--tracker-url', redis.url])
    expect(result.code).toBe(0)
    // web-6 had no tasks, so the message claims none for it.
    expect(result.stdout.split('\n')[0]).toBe(
      'Removed 2 stopped recorders from the heartbeat list and their 2 active tasks: web-5/555, web-6/666',
    )
  })

  it('prunes 60,000 stopped recorders', async () => {
    const count = 60_000
    for (let from = 0; from < count; from += 10_000) {
      const members = Array.from({ length: 10_000 }, (_unused, index) => `host-${from + index}/${from + index}-0-1.`)
      await redis.client.sadd('heartbeats', ...members)
    }
    // The last prefix in sort order falls in the last batch of script calls.
    writer.recordStart('host-9999/9999-0-1.0', recorderStartText(active('/orphan-last', 1_000, 9999)))
    writer.recordStart('host-0/0-0-1.0', recorderStartText(active('/orphan-first', 1_000, 0)))
    await writer.flush()

    const result = await runCli(['prune', '--tracker-url', redis.url])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const [first, second] = result.stdout.split('\n')
    expect(first).toMatch(/^Removed 60000 stopped recorders from the heartbeat list and their 2 active tasks: host-0\/0, /)
    expect(first).toMatch(/ and 59980 more$/)
    expect(second).toMatch(/^2 tasks moved to the completed tasks as ended by cleanup/)
    expect(await redis.client.scard('heartbeats')).toBe(0)
    expect(await redis.client.hlen('processors')).toBe(0)
  }, 60_000)

  it('prints stale prefixes safely', async () => {
    const hostile = `esc\x1b]0;PWN\x07${'h'.repeat(200)}/999-0-1.`
    writer.writeHeartbeat(heartbeat(hostile, 999), 300)
    writer.recordStart(`${hostile}0`, recorderStartText(active('/orphan', 1_000, 999)))
    await writer.flush()
    await sleep(500)

    const result = await runCli(['prune', '--tracker-url', redis.url])
    expect(result.code).toBe(0)
    const line = result.stdout.split('\n')[0] as string
    expect(line).not.toContain('\x1b')
    expect(line).not.toContain('\x07')
    expect(line).toContain('esc␛]0;PWN␇hhh')
    expect(line).toMatch(/h…$/)
    expect(line.length).toBeLessThan(200)
  })

  it('keeps the completed tasks the apps keep', async () => {
    writer.writeHeartbeat(heartbeat('web-1/111-0-1.', 111), 300)
    for (let slot = 0; slot < 5; slot++) {
      writer.recordStart(`web-1/111-0-1.${slot}`, recorderStartText(active(`/orphan-${slot}`, 1_000, 111)))
    }
    await writer.flush()
    await sleep(500)

    // Only prune uses the variable; a health probe with a stray value still works.
    const probe = await runCli(['check', '--tracker-url', redis.url], { env: { TOP_MAX_COMPLETED_TASKS: 'ten' } })
    expect(probe.stderr).not.toContain('TOP_MAX_COMPLETED_TASKS')
    expect(probe.code).toBe(0)
    for (const value of ['ten', '99999999999999999999']) {
      const invalid = await runCli(['prune', '--tracker-url', redis.url], { env: { TOP_MAX_COMPLETED_TASKS: value } })
      expect(invalid.code).toBe(2)
      expect(invalid.stderr).toBe(
        'web-top-cli: The TOP_MAX_COMPLETED_TASKS environment variable must be a whole number from 1 to ' +
          `9007199254740991 (received "${value}")\n`,
      )
    }
    const result = await runCli(['prune', '--tracker-url', redis.url], { env: { TOP_MAX_COMPLETED_TASKS: '3' } })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('Removed 1 stopped recorder from the heartbeat list and its 5 active tasks')
    expect(await redis.client.llen('past_tasks')).toBe(3)
    // The line agrees with LLEN: 5 ended, and the trim keeps 3 of them.
    expect(result.stdout.split('\n')[1]).toBe(
      '5 tasks ended by cleanup (recorded_successfully false, tag web_top.outcome: process_stopped); ' +
        'the completed tasks were trimmed to 3, the larger of TOP_MAX_COMPLETED_TASKS and their count ' +
        'before the prune, so 3 of them are kept',
    )
    const left = (await redis.client.hkeys('processors')).filter((field) => field.startsWith('web-1/111-0-1.'))
    expect(left).toEqual([])

    // They did not complete then, and their durations run until the prune,
    // so the figures leave them out.
    const check = await runCli(['check', '--max-p99', '500', '--tracker-url', redis.url])
    expect(check.stdout).toMatch(/^OK: .*p99 -; 0 requests in the last 60s/)
    expect(check.code).toBe(0)
  })
})

function active(path: string, runningMs: number, processId = 1): HttpTask {
  return {
    task_id: `active-${++sequence}`,
    host_name: `web-${processId === 111 ? 1 : 2}`,
    process_id: processId,
    thread_id: 0,
    process_internal_id: '1.0',
    started_at: formatIsoTime(Date.now() - runningMs),
    ended_at: null,
    method: 'GET',
    path,
  }
}

function heartbeat(prefix: string, processId: number): Heartbeat {
  const now = Date.now()
  return {
    processor_id_prefix: prefix,
    host_name: prefix.split('/')[0] as string,
    process_id: processId,
    thread_id: 0,
    processor_name: `node:${processId}`,
    started_at: formatIsoTime(now - 120_000),
    updated_at: formatIsoTime(now),
    ttl_ms: 60_000,
    event_loop_delay_p99_ms: 3.5,
    heap_used_bytes: 20 * 1024 * 1024,
    rss_bytes: 60 * 1024 * 1024,
    requests_in_flight: 1,
    requests_completed: 42,
    records_dropped: 0,
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms))
}
