import { describe, expect, it } from 'vitest'
import { DurationHistogram, StatsWindow } from '../src/cli/stats'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'

const NOW = Date.parse('2026-12-04T15:00:00Z')

function completed(id: number, endedAgoMs: number, durationMs: number, status: number | null, route = '/r'): HttpTask {
  const ended = NOW - endedAgoMs
  return {
    task_id: id,
    task_name: route,
    host_name: `host-${id % 2}`,
    process_id: 100 + (id % 3),
    thread_id: 0,
    started_at: formatIsoTime(ended - durationMs),
    ended_at: formatIsoTime(ended),
    status_code: status,
  }
}

describe('DurationHistogram', () => {
  it('returns quantiles within 0.5 % by nearest rank', () => {
    const histogram = new DurationHistogram()
    for (let value = 1; value <= 1000; value++) histogram.add(value)
    for (const [q, exact] of [
      [0.5, 500],
      [0.95, 950],
      [0.99, 990],
      [1, 1000],
    ] as const) {
      const value = histogram.quantile(q) as number
      expect(Math.abs(value - exact) / exact).toBeLessThanOrEqual(0.005)
    }
  })

  it('forgets removed values', () => {
    const histogram = new DurationHistogram()
    histogram.add(10)
    histogram.add(5000)
    histogram.remove(5000)
    expect(histogram.count).toBe(1)
    expect(histogram.quantile(0.99)).toBeCloseTo(10, 0)
  })

  it('has no quantile when empty', () => {
    expect(new DurationHistogram().quantile(0.5)).toBeUndefined()
  })
})

describe('StatsWindow', () => {
  it('gives the exact p99 of requests that took the same time', () => {
    const window = new StatsWindow(60_000, NOW - 60_000)
    for (let id = 0; id < 50; id++) window.add(completed(id, 1_000, 200, 200), NOW)

    expect(window.figures(NOW).p99Ms).toBe(200)
    expect(window.exactQuantile(0.99, NOW)).toBe(200)
  })

  it('gives the exact quantile by nearest rank', () => {
    const window = new StatsWindow(60_000, NOW - 60_000)
    const durations = [1_000, 3, 998, 5, 997]
    durations.forEach((durationMs, id) => window.add(completed(id, 1_000, durationMs, 200), NOW))

    expect(window.exactQuantile(0.99, NOW)).toBe(1_000)
    expect(window.exactQuantile(0.5, NOW)).toBe(997)
    expect(window.exactQuantile(0.2, NOW)).toBe(3)
  })

  it('keeps the route of each path while its requests are in the window', () => {
    const window = new StatsWindow(60_000, NOW - 60_000)
    window.add({ ...completed(1, 59_000, 20, 200, '/users/:id'), method: 'GET', path: '/users/7' }, NOW)
    window.add({ ...completed(2, 1_000, 20, 200, '/users/:id'), method: 'GET', path: '/users/8' }, NOW)
    window.add({ ...completed(3, 1_000, 20, 404), task_name: null, method: 'GET', path: '/nope' }, NOW)

    expect(window.routeOfPath('GET /users/7')).toBe('/users/:id')
    expect(window.routeOfPath('GET /users/8')).toBe('/users/:id')
    expect(window.routeOfPath('GET /nope')).toBeUndefined()
    expect(window.routeOfPath('POST /users/7')).toBeUndefined()

    // Two seconds on, the request of /users/7 has left the window.
    window.routeFigures(NOW + 2_000)
    expect(window.routeOfPath('GET /users/7')).toBeUndefined()
    expect(window.routeOfPath('GET /users/8')).toBe('/users/:id')
  })

  it('counts each record once, by task id and end time', () => {
    const window = new StatsWindow(60_000, NOW - 60_000)
    const task = completed(1, 1_000, 20, 200)
    expect(window.add(task, NOW)).toBe(true)
    expect(window.add({ ...task }, NOW)).toBe(false)
    expect(window.figures(NOW).count).toBe(1)
  })

  it('computes rate, shares and status mix over the window', () => {
    const window = new StatsWindow(60_000, NOW - 60_000)
    const statuses = [200, 200, 200, 200, 200, 200, 301, 404, 404, 503, null]
    statuses.forEach((status, index) => window.add(completed(index, 1_000 + index * 100, 10 * (index + 1), status), NOW))
    const figures = window.figures(NOW)

    expect(figures.count).toBe(11)
    expect(figures.ratePerSecond).toBeCloseTo(11 / 60, 5)
    expect(figures.statusMix).toEqual({ '1xx': 0, '2xx': 6, '3xx': 1, '4xx': 2, '5xx': 1, other: 1 })
    expect(figures.serverErrorRate).toBeCloseTo(1 / 10, 5)
    expect(figures.clientErrorRate).toBeCloseTo(2 / 10, 5)
    expect(figures.p50Ms).toBeCloseTo(60, -1)
    expect(figures.p99Ms).toBeCloseTo(110, -1)
  })

  it('drops records that ended before the window', () => {
    const window = new StatsWindow(10_000, NOW - 10_000)
    expect(window.add(completed(1, 11_000, 5, 200), NOW)).toBe(false)
    window.add(completed(2, 5_000, 5, 200), NOW)
    expect(window.figures(NOW).count).toBe(1)
    expect(window.figures(NOW + 6_000).count).toBe(0)
    expect(window.routeFigures(NOW + 6_000).size).toBe(0)
  })

  it('divides by the covered time during warm-up and over gaps', () => {
    const window = new StatsWindow(60_000, NOW - 20_000)
    for (let i = 0; i < 40; i++) window.add(completed(i, 100 + i * 10, 5, 200), NOW)
    expect(window.figures(NOW).coveredMs).toBe(20_000)
    expect(window.figures(NOW).ratePerSecond).toBeCloseTo(2, 5)

    window.addGap(NOW - 15_000, NOW - 5_000)
    expect(window.figures(NOW).coveredMs).toBe(10_000)
    expect(window.figures(NOW).ratePerSecond).toBeCloseTo(4, 5)
  })

  it('leaves records that ended in a gap out of the rate', () => {
    const window = new StatsWindow(60_000, NOW - 60_000)
    window.addGap(NOW - 30_000, NOW - 10_000)
    for (let i = 0; i < 50; i++) window.add(completed(i, 11_000 + i * 100, 5, 200, '/late'), NOW)
    for (let i = 50; i < 60; i++) window.add(completed(i, 1_000 + i * 10, 5, 200, '/now'), NOW)
    const figures = window.figures(NOW)

    expect(figures.count).toBe(60)
    expect(figures.coveredCount).toBe(10)
    expect(figures.ratePerSecond).toBeCloseTo(10 / 40, 5)
    expect(window.routeFigures(NOW).get('/late')?.ratePerSecond).toBe(0)
    expect(window.routeFigures(NOW).get('/now')?.ratePerSecond).toBeCloseTo(10 / 40, 5)
  })

  it('leaves records that ended before a clear out of the rate', () => {
    const window = new StatsWindow(60_000, NOW - 60_000)
    window.clear(NOW - 2_000)
    for (let i = 0; i < 30; i++) window.add(completed(i, 3_000 + i * 100, 5, 200), NOW)
    window.add(completed(30, 1_000, 5, 200), NOW)
    const figures = window.figures(NOW)

    expect(figures.count).toBe(31)
    expect(figures.coveredCount).toBe(1)
    expect(figures.ratePerSecond).toBeCloseTo(0.5, 5)
  })

  it('keeps figures per route, hosts and processes', () => {
    const window = new StatsWindow(60_000, NOW - 60_000)
    window.add(completed(1, 1_000, 10, 200, '/a'), NOW)
    window.add(completed(2, 1_000, 30, 500, '/b'), NOW)
    window.add(completed(3, 1_000, 50, 200, '/b'), NOW)
    const routes = window.routeFigures(NOW)
    expect([...routes.keys()].sort()).toEqual(['/a', '/b'])
    expect(routes.get('/b')?.count).toBe(2)
    expect(routes.get('/b')?.serverErrorRate).toBeCloseTo(0.5, 5)
    expect(window.hosts(NOW).sort()).toEqual(['host-0', 'host-1'])
    expect(window.processes(NOW).sort()).toEqual(['host-0/102', 'host-1/100', 'host-1/101'])
  })
})
