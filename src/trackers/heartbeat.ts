/**
 * Heartbeats: each recorder refreshes a small record with a time to live,
 * so that readers can tell the active tasks of a process that stopped
 * without cleaning up from those of a live one.
 *
 * In Redis a heartbeat is the STRING `<prefix>heartbeat:<processor id
 * prefix>`, set with `PX <ttl>`, and the SET `<prefix>heartbeats` lists the
 * processor id prefixes that wrote one. A prefix that is in the set but
 * whose key expired belongs to a recorder that stopped without removing
 * its entries: its active tasks are stale. Entries of writers that never
 * write heartbeats, such as the Python tracker, are never stale.
 */
import type { Tracker } from './tracker'

/**
 * The record a recorder refreshes, as stored (JSON, snake_case like the task
 * JSON). A reader's `decodeHeartbeat` sets each field other than
 * `processor_id_prefix` to null when the stored value has the wrong type or
 * is out of range, because any client of the Redis server can write the key.
 */
export interface Heartbeat {
  /** Start of every processor id of the recorder, such as `web-1/4242-0-1.`. */
  processor_id_prefix: string
  host_name: string | null
  /** Operating-system process id: a whole number of 0 or more. */
  process_id: number | null
  /** Node worker thread id, 0 for the main thread. */
  thread_id: number | null
  processor_name: string | null
  /** ISO 8601 time the recorder started. */
  started_at: string | null
  /** ISO 8601 time of this refresh. */
  updated_at: string | null
  /** Milliseconds the record lives unless refreshed again. */
  ttl_ms: number | null
  /** 99th percentile of the event-loop delay since the previous refresh, in milliseconds. */
  event_loop_delay_p99_ms: number | null
  heap_used_bytes: number | null
  rss_bytes: number | null
  /** Requests the recorder has started and not yet ended. */
  requests_in_flight: number | null
  /** Requests the recorder has ended since it started. */
  requests_completed: number | null
  /** Task records the tracker dropped since it started. */
  records_dropped: number | null
}

/** Result of `readHeartbeats`. */
export interface HeartbeatReport {
  /** Heartbeats of the recorders alive now, sorted by processor id prefix. */
  live: Heartbeat[]
  /**
   * Processor id prefixes that wrote a heartbeat which has expired since:
   * the recorder stopped without cleaning up, and its active tasks are stale.
   */
  stalePrefixes: string[]
  /**
   * Heartbeat keys of listed prefixes that exist with another Redis type
   * than string, which any client of the server can write. Whether their
   * recorders run is unknown, so their prefixes are in neither `live` nor
   * `stalePrefixes`, and prune keeps their entries. Set only when there are
   * some.
   */
  wrongTypeKeys?: string[]
}

/** Result of `pruneStaleTasks`. */
export interface PruneResult {
  /** Active entries removed. */
  removedTasks: number
  /**
   * Of those, the entries moved to the completed tasks as ended by cleanup,
   * with the tag `web_top.outcome: process_stopped`. The others were not in
   * the record layout that the recorder writes, and were only deleted.
   */
  endedTasks: number
  /** Processor id prefixes whose entries were removed and which left the heartbeat list. */
  stalePrefixes: string[]
  /** `HeartbeatReport.wrongTypeKeys` of the read before the prune, whose entries were kept. Set only when there are some. */
  wrongTypeKeys?: string[]
}

/**
 * Reads the heartbeats of a tracker. Trackers that keep no heartbeats,
 * such as the HTTP tracker, return none and no stale prefixes.
 *
 * @example
 * const { live, stalePrefixes } = await readHeartbeats(tracker)
 * const stale = [...snapshot.active.keys()].filter((id) => isStaleProcessor(id, stalePrefixes))
 */
export async function readHeartbeats(tracker: Tracker): Promise<HeartbeatReport> {
  if (tracker.readHeartbeats === undefined) return { live: [], stalePrefixes: [] }
  return tracker.readHeartbeats()
}

/**
 * Ends the active entries of recorders whose heartbeat expired by cleanup,
 * and removes their prefixes from the heartbeat list. A recorder that writes a
 * heartbeat again before the removal runs keeps its entries. Trackers that
 * keep no heartbeats remove nothing.
 */
export async function pruneStaleTasks(tracker: Tracker): Promise<PruneResult> {
  if (tracker.pruneStaleTasks === undefined) return { removedTasks: 0, endedTasks: 0, stalePrefixes: [] }
  return tracker.pruneStaleTasks()
}

/**
 * Returns whether an active entry belongs to a stopped recorder: its
 * processor id starts with one of the stale prefixes. Every prefix ends
 * with `.`, so `host/1-0-1.` never matches the ids of `host/1-0-10.`.
 * To test many entries, use `createStaleProcessorTest()` once instead.
 */
export function isStaleProcessor(processorId: string, stalePrefixes: readonly string[]): boolean {
  return createStaleProcessorTest(stalePrefixes)(processorId)
}

/**
 * Returns a test of `isStaleProcessor()` against `stalePrefixes` that looks
 * up the part of a processor id up to each of its dots, so that its cost
 * does not grow with the number of prefixes. With thousands of stopped
 * workers never pruned, comparing each entry with each prefix took seconds.
 */
export function createStaleProcessorTest(stalePrefixes: readonly string[]): (processorId: string) => boolean {
  if (stalePrefixes.length === 0) return () => false
  const prefixes = new Set(stalePrefixes)
  return (processorId) => {
    for (let dot = processorId.indexOf('.'); dot !== -1; dot = processorId.indexOf('.', dot + 1)) {
      if (prefixes.has(processorId.slice(0, dot + 1))) return true
    }
    return false
  }
}

/**
 * Decodes a stored heartbeat. Returns null for text that is not a JSON
 * object with a string `processor_id_prefix`. Other fields of the wrong type
 * or out of range become null, so readers show them as `-`.
 */
export function decodeHeartbeat(text: unknown): Heartbeat | null {
  if (typeof text !== 'string') return null

  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null

  const record = value as Record<string, unknown>
  if (typeof record.processor_id_prefix !== 'string') return null
  return {
    processor_id_prefix: record.processor_id_prefix,
    host_name: readString(record.host_name),
    process_id: readCount(record.process_id),
    thread_id: readCount(record.thread_id),
    processor_name: readString(record.processor_name),
    started_at: readString(record.started_at),
    updated_at: readString(record.updated_at),
    ttl_ms: readMeasure(record.ttl_ms),
    event_loop_delay_p99_ms: readMeasure(record.event_loop_delay_p99_ms),
    heap_used_bytes: readCount(record.heap_used_bytes),
    rss_bytes: readCount(record.rss_bytes),
    requests_in_flight: readCount(record.requests_in_flight),
    requests_completed: readCount(record.requests_completed),
    records_dropped: readCount(record.records_dropped),
  }
}

function readString(value: unknown): string | null {
  return typeof value === 'string' ? value : null
}

/** Returns a whole number from 0 to 2^53 - 1, such as an id, a byte size or a counter, or null. */
function readCount(value: unknown): number | null {
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : null
}

/** Returns a finite number of 0 or more, such as a duration in milliseconds, or null. */
function readMeasure(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null
}

/** Sorts heartbeats by processor id prefix, so that readers list processes in a stable order. */
export function sortHeartbeats(heartbeats: Heartbeat[]): Heartbeat[] {
  return heartbeats.sort((a, b) => (a.processor_id_prefix < b.processor_id_prefix ? -1 : 1))
}
