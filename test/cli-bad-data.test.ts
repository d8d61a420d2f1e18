/**
 * `web-top-cli recent` against records no writer of ours would produce:
 * it prints the readable rows, reports how many records it skipped and why,
 * and exits 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { runCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

const STARTED = '2026-12-04T15:00:00.000000+00:00'

function record(fields: Partial<HttpTask>): string {
  return JSON.stringify({ started_at: STARTED, method: 'GET', ...fields })
}

beforeAll(async () => {
  redis = await startRedis()
  const client = redis.client

  await client.hset('bad:processors', {
    'p-invalid-json': '{"method": "GET", "path": ',
    'p-array': '[1, 2, 3]',
    'p-number': '42',
    'p-good': record({ path: '/active-good', processor_name: 'worker-good' }),
    'p-wrong-types': JSON.stringify({
      method: 5,
      path: ['/not', 'a', 'string'],
      started_at: 12,
      status_code: 'two hundred',
      request_headers: 'USER-AGENT: nope',
      processor_name: { name: 'x' },
    }),
  })
  await client.rpush(
    'bad:past_tasks',
    record({ path: '/done-good', ended_at: '2026-12-04T15:00:01Z', status_code: 200 }),
    'not json at all',
    'null',
    record({ path: '/other-offset', ended_at: '2026-12-04T17:00:02.5+02:00', status_code: 404 }),
    record({ path: '/compact-offset', started_at: '2026-12-04 10:00:00-0500', ended_at: '2026-12-04T15:00:00.25Z' }),
    record({ path: '/nanoseconds', ended_at: '2026-12-04T15:00:00.123456789Z', status_code: 204 }),
    record({ path: '/odd-time', started_at: 'yesterday', ended_at: 'today', status_code: 503 }),
  )

  // A value that is not valid UTF-8, and every class of control character.
  await client.rpush(
    'bad:past_tasks',
    Buffer.concat([
      Buffer.from('{"method":"GET","status_code":200,"path":"/bytes-'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('","request_headers":[["USER-AGENT","a\\u0000b\\u0008c\\td\\re\\nf\\u001b[31mg\\u007fh\\u009bi\\u009dj"]]}'),
    ]),
  )

  // Records that start with a UTF-8 byte order mark, as some writers emit.
  const bom = Buffer.from([0xef, 0xbb, 0xbf])
  await client.hset('bom:processors', 'p-bom', Buffer.concat([bom, Buffer.from(record({ path: '/bom-active' }))]))
  await client.rpush(
    'bom:past_tasks',
    Buffer.concat([bom, Buffer.from(record({ path: '/bom-done', ended_at: '2026-12-04T15:00:01Z', status_code: 200 }))]),
  )

  // Header values that are objects, arrays or null, next to a number.
  await client.rpush(
    'headers:past_tasks',
    record({
      path: '/odd-headers',
      ended_at: '2026-12-04T15:00:01Z',
      status_code: 200,
      request_headers: [
        ['USER-AGENT', { name: 'curl' }],
        ['CF-IPCOUNTRY', ['FI']],
        ['X-REQUEST-ID', null],
        ['X-RETRY', 3],
      ] as unknown as HttpTask['request_headers'],
      response_headers: [['Content-Length', { bytes: 5 }]] as unknown as HttpTask['response_headers'],
      tags: { 'web_top.client_ip_source': 'proxy' },
    }),
  )

  // Empty records, which have no field to show, next to a readable one.
  await client.hset('empty:processors', 'p-empty', '{}')
  await client.rpush('empty:past_tasks', '{}', record({ path: '/beside-empty', status_code: 200, ended_at: STARTED }))

  // `processors` contains a string instead of a hash.
  await client.set('wrongtype:processors', 'surprise')
  await client.rpush('wrongtype:past_tasks', record({ path: '/still-shown', status_code: 200, ended_at: STARTED }))
})

afterAll(async () => {
  await redis?.close()
})

describe('recent with bad records', () => {
  it('prints the good rows and counts the skipped records', async () => {
    const result = await runCli(
      ['recent', '--tracker-url', redis.url, '--prefix', 'bad:', '--columns', 'Method,Path,Resp'],
    )
    expect(result.code).toBe(0)

    const rows = result.stdout.trimEnd().split('\n').slice(1)
    expect(rows.map((row) => row.trim().split(/ {2,}/))).toEqual([
      ['GET', '/active-good', '-'],
      ['-', '-', '-'],
      ['GET', '/done-good', '200'],
      ['GET', '/other-offset', '404'],
      ['GET', '/compact-offset', '-'],
      ['GET', '/nanoseconds', '204'],
      ['GET', '/odd-time', '503'],
      ['GET', '/bytes-\ufffd\ufffd', '200'],
    ])
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toMatch(/^web-top-cli: 5 records skipped \(/)
    expect(result.stderr).toContain('invalid JSON')
    expect(result.stderr).toContain('not a JSON object')
  })

  it('shows durations across timestamp formats and offsets', async () => {
    const result = await runCli(
      ['recent', '--tracker-url', redis.url, '--prefix', 'bad:', '--columns', 'Path,Duration'],
    )
    const durations = Object.fromEntries(
      result.stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((row) => row.trim().split(/ {2,}/) as [string, string]),
    )
    expect(durations['/done-good']).toBe('1.00s')
    expect(durations['/other-offset']).toBe('2.50s')
    expect(durations['/compact-offset']).toBe('250ms')
    expect(durations['/nanoseconds']).toBe('123ms')
    expect(durations['/odd-time']).toBe('-')
  })

  it('neutralises control characters and invalid bytes', async () => {
    const result = await runCli(
      ['recent', '--tracker-url', redis.url, '--prefix', 'bad:', '--columns', 'Path,User agent'],
    )
    expect(result.stdout).toMatch(/\/bytes-\ufffd\ufffd +a␀b␈c␉d␍e␊f␛\[31mg␡h\\u009bi\\u009dj\n/)
    expect(result.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/)
  })

  it('reads records with a byte order mark', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'bom:', '--columns', 'Path,Resp'])
    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    const rows = result.stdout.trimEnd().split('\n').slice(1)
    expect(rows.map((row) => row.trim().split(/ {2,}/))).toEqual([
      ['/bom-active', '-'],
      ['/bom-done', '200'],
    ])
  })

  it('drops header values that are not scalars', async () => {
    const table = await runCli(
      ['recent', '--tracker-url', redis.url, '--prefix', 'headers:', '--columns', 'Cty,Path,Length,User agent'],
    )
    expect(table.code).toBe(0)
    expect(table.stdout).not.toContain('[object Object]')
    const [header, row] = table.stdout.trimEnd().split('\n')
    // The Cty column is left out when no request has a CF-IPCOUNTRY header.
    expect(header?.trim().split(/ {2,}/)).toEqual(['Path', 'Length', 'User agent'])
    expect(row?.trim().split(/ {2,}/)).toEqual(['/odd-headers', '-', '-'])

    const json = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'headers:', '--json'])
    const [task] = JSON.parse(json.stdout) as HttpTask[]
    expect(task?.request_headers).toEqual([['X-RETRY', '3']])
    expect(task?.response_headers).toEqual([])
  })

  it('skips a processors key of the wrong type', async () => {
    const result = await runCli(
      ['recent', '--tracker-url', redis.url, '--prefix', 'wrongtype:', '--columns', 'Path,Resp'],
    )
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Path          Resp\n/still-shown   200\n')
    expect(result.stderr).toBe('web-top-cli: 1 record skipped (key wrongtype:processors: wrong key type)\n')
  })

  it.each([
    ['table', ['--columns', 'Path,Resp'], (stdout: string) => stdout.trimEnd().split('\n').length - 1],
    ['--json', ['--json'], (stdout: string) => (JSON.parse(stdout) as unknown[]).length],
    ['--ndjson', ['--ndjson'], (stdout: string) => stdout.trimEnd().split('\n').length],
  ])('skips and counts empty records in %s output', async (_format, formatArgs, countRecords) => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--prefix', 'empty:', ...formatArgs])

    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/beside-empty')
    expect(countRecords(result.stdout)).toBe(1)
    expect(result.stderr).toBe(
      'web-top-cli: 2 records skipped (active task of processor "p-empty": empty JSON object; ' +
        'completed task at index 0: empty JSON object)\n',
    )
  })

  it('prints the readable records with --json', async () => {
    const result = await runCli(
      ['recent', '--tracker-url', redis.url, '--prefix', 'bad:', '--json'],
    )
    expect(result.code).toBe(0)
    const records = JSON.parse(result.stdout) as HttpTask[]
    expect(records).toHaveLength(8)
    expect(records[1]).toMatchObject({ method: null, path: null, started_at: null, status_code: null })
    expect(result.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/)
  })
})
