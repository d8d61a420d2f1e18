import { describe, expect, it } from 'vitest'
import {
  createPathMatcher,
  createTaskFilter,
  createTextFilter,
  parseDurationMs,
  parseStatusFilter,
} from '../src/cli/filters'
import type { HttpTask } from '../src/task/http-task'

const NOW = Date.parse('2026-12-04T15:00:00Z')

const TASK: HttpTask = {
  task_id: 1,
  host_name: 'web-1',
  host: 'shop.example',
  method: 'GET',
  path: '/users/42',
  client_ip_address: '10.0.0.7',
  request_headers: [['USER-AGENT', 'curl/8.5.0']],
  started_at: '2026-12-04T14:59:58.500Z',
  ended_at: '2026-12-04T15:00:00Z',
  status_code: 404,
}

describe('parseStatusFilter', () => {
  it.each([
    ['404', [[404, 404]]],
    ['5xx', [[500, 599]]],
    ['400-499', [[400, 499]]],
    ['2xx, 404', [[200, 299], [404, 404]]],
    ['999', [[999, 999]]],
    ['6xx', [[600, 699]]],
    ['100-999', [[100, 999]]],
  ])('parses %s', (text, ranges) => {
    expect(parseStatusFilter(text).ranges).toEqual(ranges)
  })

  it.each(['0xx', '499-400', '099', '100-1000', '050-200', 'abc', ''])('rejects %j', (text) => {
    expect(() => parseStatusFilter(text)).toThrow()
  })
})

describe('parseDurationMs', () => {
  it.each([
    ['250', 250],
    ['250ms', 250],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['.5s', 500],
  ])('parses %s', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms)
  })

  it.each(['-1', '1w', 'fast', '5s2m'])('rejects %j', (text) => {
    expect(() => parseDurationMs(text)).toThrow('Expected a duration')
  })
})

describe('createPathMatcher', () => {
  it('matches a substring without glob characters', () => {
    expect(createPathMatcher('users')('/api/users/1')).toBe(true)
  })

  it('matches a glob against the whole path', () => {
    const match = createPathMatcher('/users/*')
    expect(match('/users/42')).toBe(true)
    expect(match('/api/users/42')).toBe(false)
    expect(createPathMatcher('/users/?2')('/users/42')).toBe(true)
  })

  it('counts code points in a glob', () => {
    expect(createPathMatcher('/emoji/??')('/emoji/🎉🎉')).toBe(true)
    expect(createPathMatcher('/emoji/?')('/emoji/🎉')).toBe(true)
    expect(createPathMatcher('/emoji/????')('/emoji/🎉🎉')).toBe(false)
  })

  it('treats regex characters in a glob literally', () => {
    expect(createPathMatcher('/a.b/*')('/axb/c')).toBe(false)
  })

  it.each([
    ['*', '', true],
    ['*', '/any/path', true],
    ['?', '', false],
    ['/a**b', '/ab', true],
    ['/a*b', '/a/x/b', true],
    ['/a*b', '/a/x/bc', false],
    ['*/b', '/a/b', true],
    ['/a/*', '/a/', true],
    ['/a/?*', '/a/', false],
    ['/*/?', '/a/bb', false],
    ['*ab*ab', '/abxab', true],
    ['*ab*ab', '/abxabx', false],
  ])('glob %s on %j is %s', (glob, path, expected) => {
    expect(createPathMatcher(glob)(path)).toBe(expected)
  })
})

describe('createTaskFilter', () => {
  it('passes a task that meets every option', () => {
    const filter = createTaskFilter({
      path: '/users/*',
      status: parseStatusFilter('4xx'),
      methods: ['get'],
      host: 'web',
      minDurationMs: 1_000,
    })
    expect(filter(TASK, NOW)).toBe(true)
  })

  it.each([
    [{ path: '/orders' }],
    [{ status: parseStatusFilter('5xx') }],
    [{ methods: ['POST'] }],
    [{ host: 'db-1' }],
    [{ minDurationMs: 2_000 }],
  ])('rejects a task that misses %j', (options) => {
    expect(createTaskFilter(options)(TASK, NOW)).toBe(false)
  })

  it('matches the Host header with --host', () => {
    expect(createTaskFilter({ host: 'shop' })(TASK, NOW)).toBe(true)
  })
})

describe('createTextFilter', () => {
  it.each(['users/4', '10.0.0', 'get', '404', 'WEB-1', 'shop.example', 'curl'])('finds %s', (text) => {
    expect(createTextFilter(text)(TASK)).toBe(true)
  })

  it('rejects a text found nowhere', () => {
    expect(createTextFilter('nothing')(TASK)).toBe(false)
  })

  it.each(['4xx', '4XX', '400-499', '200,404'])('matches status %s', (text) => {
    expect(createTextFilter(text)(TASK)).toBe(true)
  })

  it.each(['5xx', '500-599', '405'])('rejects status %s', (text) => {
    expect(createTextFilter(text)(TASK)).toBe(false)
  })

  it.each([
    ['/users/5xx', '5xx', false],
    ['/users/404-499', '404-499', false],
    ['/users/500', '500', true],
    ['/reports/127', '127', true],
  ])('matches a path of a 200 only by code: %s with %s', (path, text, expected) => {
    expect(createTextFilter(text)({ ...TASK, path, status_code: 200 })).toBe(expected)
  })
})
