/**
 * Duration options and mistaken command names, through the built CLI: a
 * duration in hours, as the tables show long durations, and the command
 * line to use for `active` and `completed`, which are modes of `recent`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from './helpers/cli'
import { completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const HOUR_MS = 3_600_000

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.rpush(
    'past_tasks',
    JSON.stringify(completedRecord('/hours/long', 200, 2 * HOUR_MS + 7 * 60_000)),
    JSON.stringify(completedRecord('/hours/short', 200, 30 * 60_000)),
  )
})

afterAll(async () => {
  await redis?.close()
})

describe('--min-duration in hours', () => {
  it.each(['1h', '2h07m', '1.5h'])('takes %s', async (value) => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'Path,Duration', '--min-duration', value])

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/hours/long')
    expect(result.stdout).toContain('2h07m')
    expect(result.stdout).not.toContain('/hours/short')
  })

  it('lists the units it accepts', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--min-duration', '1w'])

    expect(result.code).toBe(2)
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain("argument '1w' is invalid.")
    expect(result.stderr).toContain('The units are ms, s, m, h and d')
  })

  it('rejects units out of order', async () => {
    const result = await runCli(['check', '--tracker-url', redis.url, '--max-p99', '7m2h'])

    expect(result.code).toBe(2)
    expect(result.stderr).toContain("argument '7m2h' is invalid.")
  })
})

describe('mistaken command names', () => {
  it.each([
    ['active', 'recent --mode active'],
    ['completed', 'recent --mode complete'],
    ['complete', 'recent --mode complete'],
  ])('suggests the mode of recent for %s', async (name, suggestion) => {
    const result = await runCli([name, '--tracker-url', redis.url])

    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(`web-top-cli: unknown command '${name}' (Did you mean ${suggestion}?)\n`)
  })

  it.each([
    ['Active', 'recent --mode active'],
    ['RECENT', 'recent'],
    ['Live', 'live'],
  ])('suggests the command for %s in other case', async (name, suggestion) => {
    const result = await runCli([name, '--tracker-url', redis.url])

    expect(result.code).toBe(2)
    expect(result.stderr).toBe(`web-top-cli: unknown command '${name}' (Did you mean ${suggestion}?)\n`)
  })

  it('suggests the command in help for other case', async () => {
    const result = await runCli(['help', 'RECENT'])

    expect(result.code).toBe(2)
    expect(result.stderr).toBe("web-top-cli: unknown command 'RECENT' (Did you mean recent?)\n")
  })

  it('suggests the mode in help too', async () => {
    const result = await runCli(['help', 'active'])

    expect(result.code).toBe(2)
    expect(result.stderr).toBe("web-top-cli: unknown command 'active' (Did you mean recent --mode active?)\n")
  })

  it('leaves them out of the help', async () => {
    const result = await runCli(['--help'])

    expect(result.code).toBe(0)
    expect(result.stdout).not.toMatch(/^\s+active\b/m)
    expect(result.stdout).not.toMatch(/^\s+complete/m)
  })

  it('leaves them out of the list for an unknown name', async () => {
    const result = await runCli(['help', 'bogus'])

    expect(result.code).toBe(2)
    expect(result.stderr).toBe(
      "web-top-cli: unknown command 'bogus'; the commands are recent, live, tail, check, clear, prune, prefixes, version, help\n",
    )
  })
})
