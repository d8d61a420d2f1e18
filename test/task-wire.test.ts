import { describe, expect, it } from 'vitest'
import { getTaskState } from '../src/task/http-task'
import { decodeTask, encodeFields, encodeNullableString, encodeString, flattenString, joinFragments } from '../src/task/wire'

/** A completed task as the Python Top Framework writes it. */
const PYTHON_COMPLETED = {
  process_id: 2125131,
  thread_id: 140539531953920,
  process_internal_id: null,
  task_id: 140538974609616,
  processor_name: '<Worker 2125131>',
  started_at: '2022-08-23T15:49:10.905607+00:00',
  updated_at: '2022-08-23T15:49:11.631117+00:00',
  ended_at: '2022-08-23T15:49:11.631117+00:00',
  recorded_successfully: true,
  tags: null,
  method: 'GET',
  path: '/api/candles',
  params: null,
  uri: null,
  client_ip_address: '127.0.0.1',
  request_headers: [
    ['HOST', 'tradingstrategy.ai'],
    ['X-FORWARDED-FOR', 'xx, yy'],
  ],
  status_code: 200,
  status_message: '200 OK',
  response_headers: [['Content-Length', '429000']],
}

/** An active task as the Python tracker writes it, with a string id and an IPv6 client. */
const PYTHON_ACTIVE = {
  task_id: 'req-7',
  task_name: null,
  host_name: 'vm',
  process_id: 7508,
  thread_id: 140585143763648,
  process_internal_id: 'conn-3',
  processor_name: '7508:MainThread',
  started_at: '2026-12-04T15:00:00.861753+00:00',
  updated_at: '2026-12-04T15:00:00.861759+00:00',
  ended_at: null,
  recorded_successfully: null,
  tags: null,
  command_line: ['fixture.py', 'redis://127.0.0.1:6399/14'],
  protocol: null,
  host: null,
  method: 'POST',
  path: '/api/slow',
  params: null,
  uri: null,
  client_ip_address: '2001:db8::1',
  request_headers: [['HOST', 'example.com']],
  status_code: null,
  status_message: null,
  response_headers: null,
}

describe('decodeTask', () => {
  it('reads a completed Python record', () => {
    const result = decodeTask(JSON.stringify(PYTHON_COMPLETED))
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.task).toEqual(PYTHON_COMPLETED)
    // Decoding adds no field the record does not have.
    expect('command_line' in result.task).toBe(false)
    expect(getTaskState(result.task)).toBe('completed')
  })

  it('reads an active Python record', () => {
    const result = decodeTask(JSON.stringify(PYTHON_ACTIVE))
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.task).toEqual(PYTHON_ACTIVE)
    expect(getTaskState(result.task)).toBe('active')
  })

  it('nulls fields of the wrong type', () => {
    const result = decodeTask(
      JSON.stringify({
        task_id: { nested: true },
        path: 42,
        process_id: 1.5,
        status_code: '200',
        recorded_successfully: 'yes',
        tags: ['a'],
        params: 'x=1',
        command_line: 'node app.js',
        request_headers: 'HOST: a',
      }),
    )
    expect(result).toEqual({
      ok: true,
      task: {
        task_id: null,
        path: null,
        process_id: null,
        status_code: null,
        recorded_successfully: null,
        tags: null,
        params: null,
        command_line: null,
        request_headers: null,
      },
    })
  })

  it('keeps usable parts of odd values', () => {
    const result = decodeTask(
      JSON.stringify({
        tags: { a: 'x', b: 2, c: { deep: true }, d: null, e: true },
        params: { n: 5, list: [1, 'two', { deep: 1 }, null], kept: ['a', 'b'], nested: { a: { b: 'c' } }, none: null },
        request_headers: [['A', 'x'], ['B', 7], ['only-name'], 'junk', ['C', 'y', 'extra'], ['D', 'z']],
        command_line: ['node', 3, { x: 1 }],
        unknown_field: 'kept',
      }),
    )
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.task.tags).toEqual({ a: 'x', b: '2', c: '{"deep":true}', d: 'null', e: 'true' })
    expect(result.task.params).toEqual({
      n: '5',
      list: ['1', 'two', '{"deep":1}', 'null'],
      kept: ['a', 'b'],
      nested: '{"a":{"b":"c"}}',
      none: 'null',
    })
    expect(result.task.request_headers).toEqual([
      ['A', 'x'],
      ['B', '7'],
      ['C', 'y'],
      ['D', 'z'],
    ])
    expect(result.task.command_line).toEqual(['node', '3', '{"x":1}'])
    expect(result.task.unknown_field).toBe('kept')
  })

  it.each([
    [42, 'not a string'],
    ['{oops', 'invalid JSON'],
    ['[1]', 'not a JSON object'],
    ['null', 'not a JSON object'],
    ['"text"', 'not a JSON object'],
    ['{}', 'empty JSON object'],
    ['{"type":"ping"}', 'JSON object with no task field set'],
    ['{"task_id":null,"path":null}', 'JSON object with no task field set'],
  ])('rejects %j', (input, reason) => {
    expect(decodeTask(input)).toEqual({ ok: false, reason })
  })

  it('marks an aborted task', () => {
    const result = decodeTask(JSON.stringify({ ended_at: '2026-01-01T00:00:00+00:00', recorded_successfully: false }))
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(getTaskState(result.task)).toBe('aborted')
  })
})

describe('encodeFields and joinFragments', () => {
  it('join into one JSON object', () => {
    const text = joinFragments(encodeFields({ a: 1 }), '', encodeFields({ b: 'x', c: null }))
    expect(JSON.parse(text)).toEqual({ a: 1, b: 'x', c: null })
  })

  it('join nothing into an empty object', () => {
    expect(joinFragments('', '')).toBe('{}')
  })
})

describe('encodeString', () => {
  it.each([
    ['plain ASCII', 'Mozilla/5.0 (X11; Linux x86_64)'],
    ['empty', ''],
    ['quote and backslash', 'say "hi" \\ bye'],
    ['control characters', 'a\u0000b\nc\td\u001f'],
    ['DEL', 'a\u007fb'],
    ['Latin-1', 'caf\u00e9 \u00ff'],
    ['line separators', 'a\u2028b\u2029c'],
    ['emoji', 'ok \u{1f600}'],
    ['lone surrogates', '\ud800 and \udfff'],
  ])('matches JSON.stringify for %s', (_name, value) => {
    expect(encodeString(value)).toBe(JSON.stringify(value))
    expect(JSON.parse(encodeString(value))).toBe(value)
  })

  it('encodes null and undefined as null', () => {
    expect(encodeNullableString(null)).toBe('null')
    expect(encodeNullableString(undefined)).toBe('null')
    expect(encodeNullableString('x')).toBe('"x"')
  })
})

describe('flattenString', () => {
  it('returns an equal string', () => {
    let built = ''
    for (let i = 0; i < 50; i++) built += `,${i}"\u00e9`
    expect(flattenString(built)).toBe(built)
    expect(flattenString('')).toBe('')
  })
})
