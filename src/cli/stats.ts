/**
 * Figures over a rolling window of completed requests: rate, duration
 * percentiles, error shares and the status mix, in total and per route.
 *
 * Samples go into one-second buckets. A bucket leaves the window whole, so
 * the window's edge is exact to one second. Durations go into a histogram
 * with bins 1 % apart, so a percentile is within 0.5 % of the exact value.
 */
import { isEndedByCleanup } from '../task/cleanup-end'
import {
  getCompletedKey,
  getDurationMs,
  getEndedAtMs,
  getProcessName,
  getRoute,
  getStatusClass,
  type StatusClass,
} from '../task/derived'
import type { HttpTask } from '../task/http-task'
import { isBeyondClockSkew, roundToMicroseconds } from '../task/time'

/** Width of one histogram bin: each bin's upper bound is 1 % above its lower bound. */
const BIN_GROWTH = 1.01
const LOG_BIN_GROWTH = Math.log(BIN_GROWTH)

/** Durations below this many milliseconds share the lowest bin. */
const SMALLEST_DURATION_MS = 0.01

const SECOND_MS = 1_000

/** Shortest time a rate is computed over, so that the first requests seen do not show a huge rate. */
export const MIN_RATE_SPAN_MS = 1_000

/** Name of the route of tasks that have no `task_name`. */
export const UNKNOWN_ROUTE = '(no route)'

/** The samples of one bin of a `DurationHistogram`: their count and the sum of their durations. */
interface Bin {
  count: number
  sumMs: number
}

/** A histogram of durations in milliseconds that supports removal and quantiles. */
export class DurationHistogram {
  readonly #bins = new Map<number, Bin>()
  #sortedBins: number[] | undefined
  #count = 0

  get count(): number {
    return this.#count
  }

  add(durationMs: number): void {
    const index = binOf(durationMs)
    const bin = this.#bins.get(index)
    if (bin === undefined) {
      this.#bins.set(index, { count: 1, sumMs: durationMs })
      this.#sortedBins = undefined
    } else {
      bin.count++
      bin.sumMs += durationMs
    }
    this.#count++
  }

  remove(durationMs: number): void {
    const index = binOf(durationMs)
    const bin = this.#bins.get(index)
    if (bin === undefined) return
    if (bin.count <= 1) {
      this.#bins.delete(index)
      this.#sortedBins = undefined
    } else {
      bin.count--
      bin.sumMs -= durationMs
    }
    this.#count--
  }

  /**
   * Returns the duration below or at which a share `q` (0 to 1) of the
   * samples lie, by nearest rank, or `undefined` when there are none. The
   * value is the mean of the samples in the rank's bin, within 0.5 % of
   * the exact one, and exact when they all took the same time.
   */
  quantile(q: number): number | undefined {
    if (this.#count === 0) return undefined
    this.#sortedBins ??= [...this.#bins.keys()].sort((a, b) => a - b)
    const rank = Math.max(1, Math.ceil(q * this.#count))
    let seen = 0
    let last: Bin | undefined
    for (const index of this.#sortedBins) {
      last = this.#bins.get(index)
      seen += last?.count ?? 0
      if (seen >= rank) break
    }
    // Rounded, because removals leave the sum off by float error, which the cut display would show.
    return last === undefined ? undefined : roundToMicroseconds(last.sumMs / last.count)
  }
}

/** Counts by status class; `other` counts requests without a status (aborted, no response). */
export type StatusMix = Record<StatusClass | 'other', number>

/** The figures of a group of requests (all of them, or one route) over the window. */
export interface GroupFigures {
  /** Completed requests in the window. */
  count: number
  /**
   * Completed requests that ended within the covered part of the window:
   * not before full coverage began and not in a gap. Records that an app
   * sends late, as after a Redis outage, can end outside it.
   */
  coveredCount: number
  /** `coveredCount` per second of the covered part of the window. */
  ratePerSecond: number
  p50Ms: number | undefined
  p95Ms: number | undefined
  p99Ms: number | undefined
  /** Share (0 to 1) of requests with a status that got a 5xx; `undefined` when none has a status. */
  serverErrorRate: number | undefined
  /** Share (0 to 1) of requests with a status that got a 4xx. */
  clientErrorRate: number | undefined
  statusMix: StatusMix
}

export interface WindowFigures extends GroupFigures {
  /** Length of the window in milliseconds. */
  windowMs: number
  /** How much of the window the figures cover, in milliseconds, after gaps and warm-up. */
  coveredMs: number
}

/** Returns the key of a request's method and path, under which `StatsWindow.routeOfPath` finds its route. */
export function getMethodPathKey(task: HttpTask): string {
  return `${task.method ?? ''} ${task.path ?? ''}`
}

/** One completed request as the window keeps it. */
interface Sample {
  key: string
  endedAtMs: number
  durationMs: number | undefined
  statusClass: StatusClass | undefined
  route: string
  /** `getMethodPathKey` of a request whose record names its route, else undefined. */
  methodPath: string | undefined
  host: string | undefined
  process: string | undefined
}

class Group {
  readonly histogram = new DurationHistogram()
  readonly statusMix: StatusMix = emptyStatusMix()
  count = 0

  add(sample: Sample): void {
    this.count++
    this.statusMix[sample.statusClass ?? 'other']++
    if (sample.durationMs !== undefined) this.histogram.add(sample.durationMs)
  }

  remove(sample: Sample): void {
    this.count--
    this.statusMix[sample.statusClass ?? 'other']--
    if (sample.durationMs !== undefined) this.histogram.remove(sample.durationMs)
  }

  /** `uncovered` is the number of the group's samples that ended outside the covered span. */
  figures(coveredMs: number, uncovered: number): GroupFigures {
    const mix = this.statusMix
    const withStatus = this.count - mix.other
    const coveredCount = this.count - uncovered
    return {
      count: this.count,
      coveredCount,
      ratePerSecond: (coveredCount * SECOND_MS) / Math.max(coveredMs, MIN_RATE_SPAN_MS),
      p50Ms: this.histogram.quantile(0.5),
      p95Ms: this.histogram.quantile(0.95),
      p99Ms: this.histogram.quantile(0.99),
      serverErrorRate: withStatus === 0 ? undefined : mix['5xx'] / withStatus,
      clientErrorRate: withStatus === 0 ? undefined : mix['4xx'] / withStatus,
      statusMix: { ...mix },
    }
  }
}

/**
 * Completed requests of the last `windowMs` milliseconds, each counted once
 * however often its record is seen (by `task_id` and `ended_at`).
 */
export class StatsWindow {
  readonly windowMs: number
  readonly #buckets = new Map<number, Sample[]>()
  readonly #seen = new Set<string>()
  readonly #total = new Group()
  readonly #routes = new Map<string, Group>()
  /** Route of each method and path (`getMethodPathKey`) of the window's requests, with their count. */
  readonly #pathRoutes = new Map<string, { route: string; count: number }>()
  readonly #hosts = new Map<string, number>()
  readonly #processes = new Map<string, number>()
  /** Periods, as [from, to] in epoch ms, in which some completed requests may be missing. */
  #gaps: Array<[number, number]> = []
  #coveredSinceMs: number

  constructor(windowMs: number, coveredSinceMs: number) {
    this.windowMs = windowMs
    this.#coveredSinceMs = coveredSinceMs
  }

  /** Start of the period from which every completed request is known. */
  get coveredSinceMs(): number {
    return this.#coveredSinceMs
  }

  /**
   * Adds a completed record. Returns false when it was seen before, has no
   * readable end time, ended before the window, ends further in the future
   * than the clock skew allows (`MAX_CLOCK_SKEW_MS`), or was ended by
   * cleanup: such a task did not complete then, and a prune after a crash
   * would show up as a burst of requests with durations up to the prune.
   */
  add(task: HttpTask, nowMs: number): boolean {
    if (isEndedByCleanup(task)) return false
    const endedAtMs = getEndedAtMs(task)
    if (endedAtMs === undefined || endedAtMs < nowMs - this.windowMs) return false
    if (isBeyondClockSkew(endedAtMs, nowMs)) return false
    const key = getCompletedKey(task)
    if (this.#seen.has(key)) return false

    const route = getRoute(task)
    const sample: Sample = {
      key,
      endedAtMs,
      durationMs: getDurationMs(task, nowMs),
      statusClass: getStatusClass(task),
      route: route ?? UNKNOWN_ROUTE,
      methodPath: route === undefined ? undefined : getMethodPathKey(task),
      host: task.host_name ?? undefined,
      process: getProcessName(task),
    }
    const second = Math.floor(endedAtMs / SECOND_MS)
    const bucket = this.#buckets.get(second)
    if (bucket === undefined) this.#buckets.set(second, [sample])
    else bucket.push(sample)

    this.#seen.add(key)
    this.#total.add(sample)
    this.#routeGroup(sample.route).add(sample)
    if (route !== undefined && sample.methodPath !== undefined) this.#addPathRoute(sample.methodPath, route)
    countIn(this.#hosts, sample.host, 1)
    countIn(this.#processes, sample.process, 1)
    return true
  }

  /** Returns the recording hosts of the requests in the window. */
  hosts(nowMs: number): string[] {
    this.#evict(nowMs)
    return [...this.#hosts.keys()]
  }

  /** Returns the recording processes (`host/pid`) of the requests in the window. */
  processes(nowMs: number): string[] {
    this.#evict(nowMs)
    return [...this.#processes.keys()]
  }

  /** Records that completed requests between `fromMs` and `toMs` may be missing. */
  addGap(fromMs: number, toMs: number): void {
    if (toMs > fromMs) this.#gaps.push([fromMs, toMs])
  }

  /**
   * Forgets every request, after the tracker was cleared, so that the
   * figures count from `sinceMs` on.
   */
  clear(sinceMs: number): void {
    for (const samples of this.#buckets.values()) {
      for (const sample of samples) this.#removeSample(sample)
    }
    this.#buckets.clear()
    this.#gaps = []
    this.#coveredSinceMs = sinceMs
  }

  /** Moves the start of full coverage, for example to the oldest record of the first read. */
  setCoveredSince(ms: number): void {
    this.#coveredSinceMs = ms
  }

  /** Drops the samples that ended before the window and returns the figures of all requests. */
  figures(nowMs: number): WindowFigures {
    this.#evict(nowMs)
    const coveredMs = this.#coveredMs(nowMs)
    const uncovered = this.#countUncovered(nowMs)
    return { ...this.#total.figures(coveredMs, uncovered.total), windowMs: this.windowMs, coveredMs }
  }

  /**
   * Returns the duration below or at which a share `q` (0 to 1) of the
   * window's requests with a known duration lie, by nearest rank, computed
   * from every sample, or `undefined` when there is none. It sorts the
   * window's durations, so it serves one-off judgements such as `check`,
   * where the histogram's 0.5 % could put a p99 on the wrong side of a limit.
   */
  exactQuantile(q: number, nowMs: number): number | undefined {
    this.#evict(nowMs)
    const durations: number[] = []
    for (const samples of this.#buckets.values()) {
      for (const sample of samples) if (sample.durationMs !== undefined) durations.push(sample.durationMs)
    }
    if (durations.length === 0) return undefined
    durations.sort((a, b) => a - b)
    const rank = Math.max(1, Math.ceil(q * durations.length))
    return durations[rank - 1]
  }

  /**
   * Returns the route of the latest request in the window with this method
   * and path (`getMethodPathKey`) whose record named one, or undefined.
   * A request still in flight has no route yet in the records of some
   * frameworks, and this puts it under the route of its path.
   */
  routeOfPath(methodPath: string): string | undefined {
    return this.#pathRoutes.get(methodPath)?.route
  }

  /** Returns the figures of each route seen in the window. */
  routeFigures(nowMs: number): Map<string, GroupFigures> {
    this.#evict(nowMs)
    const coveredMs = this.#coveredMs(nowMs)
    const uncovered = this.#countUncovered(nowMs)
    const result = new Map<string, GroupFigures>()
    for (const [route, group] of this.#routes) {
      result.set(route, group.figures(coveredMs, uncovered.byRoute.get(route) ?? 0))
    }
    return result
  }

  /**
   * Counts the samples that ended outside the covered span, in total and by
   * route: in a gap, or before full coverage began when that is within the
   * window. Such samples come from records written late, such as those an
   * app sends after a Redis restart, which the view takes for a clear. Only
   * the buckets that overlap such a period are searched.
   */
  #countUncovered(nowMs: number): { total: number; byRoute: Map<string, number> } {
    const periods: Array<[number, number]> = [...this.#gaps]
    if (this.#coveredSinceMs > nowMs - this.windowMs) periods.push([Number.NEGATIVE_INFINITY, this.#coveredSinceMs])
    const result = { total: 0, byRoute: new Map<string, number>() }
    if (periods.length === 0) return result

    const isUncovered = (ms: number): boolean => periods.some(([from, to]) => from <= ms && ms < to)
    for (const [second, samples] of this.#buckets) {
      const start = second * SECOND_MS
      if (!periods.some(([from, to]) => from < start + SECOND_MS && start < to)) continue
      for (const sample of samples) {
        if (!isUncovered(sample.endedAtMs)) continue
        result.total++
        countIn(result.byRoute, sample.route, 1)
      }
    }
    return result
  }

  /** Time of the window not lost to warm-up or gaps, in milliseconds. */
  #coveredMs(nowMs: number): number {
    const windowStart = Math.max(nowMs - this.windowMs, this.#coveredSinceMs)
    let covered = nowMs - windowStart
    for (const [from, to] of this.#gaps) {
      covered -= Math.max(0, Math.min(to, nowMs) - Math.max(from, windowStart))
    }
    return Math.max(0, covered)
  }

  #evict(nowMs: number): void {
    const firstSecondKept = Math.floor((nowMs - this.windowMs) / SECOND_MS)
    for (const [second, samples] of this.#buckets) {
      if (second >= firstSecondKept) continue
      for (const sample of samples) this.#removeSample(sample)
      this.#buckets.delete(second)
    }
    this.#gaps = this.#gaps.filter(([, to]) => to >= nowMs - this.windowMs)
  }

  #removeSample(sample: Sample): void {
    this.#seen.delete(sample.key)
    this.#total.remove(sample)
    const group = this.#routes.get(sample.route)
    group?.remove(sample)
    if (group !== undefined && group.count === 0) this.#routes.delete(sample.route)
    if (sample.methodPath !== undefined) this.#removePathRoute(sample.methodPath)
    countIn(this.#hosts, sample.host, -1)
    countIn(this.#processes, sample.process, -1)
  }

  #addPathRoute(methodPath: string, route: string): void {
    const entry = this.#pathRoutes.get(methodPath)
    if (entry === undefined) {
      this.#pathRoutes.set(methodPath, { route, count: 1 })
      return
    }
    entry.route = route
    entry.count++
  }

  #removePathRoute(methodPath: string): void {
    const entry = this.#pathRoutes.get(methodPath)
    if (entry === undefined) return
    entry.count--
    if (entry.count === 0) this.#pathRoutes.delete(methodPath)
  }

  #routeGroup(route: string): Group {
    let group = this.#routes.get(route)
    if (group === undefined) {
      group = new Group()
      this.#routes.set(route, group)
    }
    return group
  }
}

export function emptyStatusMix(): StatusMix {
  return { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 }
}

/** Adds `delta` to the count of `name`, and deletes a name whose count drops to 0. */
function countIn(counts: Map<string, number>, name: string | undefined, delta: number): void {
  if (name === undefined) return
  const count = (counts.get(name) ?? 0) + delta
  if (count > 0) counts.set(name, count)
  else counts.delete(name)
}

function binOf(durationMs: number): number {
  if (!(durationMs > SMALLEST_DURATION_MS)) return Number.NEGATIVE_INFINITY
  return Math.round(Math.log(durationMs) / LOG_BIN_GROWTH)
}

