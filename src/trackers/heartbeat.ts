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

/** The record a recorder refreshes, as stored (JSON, snake_case like the task JSON). */
export interface Heartbeat {
  /** Start of every processor id of the recorder, such as `web-1/4242-0-1.`. */
  processor_id_prefix: string
  host_name: string
  process_id: number
  thread_id: number
  processor_name: string
  /** ISO 8601 time the recorder started. */
  started_at: string
  /** ISO 8601 time of this refresh. */
  updated_at: string
  /** Milliseconds the record lives unless refreshed again. */
  ttl_ms: number
  /** 99th percentile of the event-loop delay since the previous refresh, in milliseconds. */
  event_loop_delay_p99_ms: number | null
  heap_used_bytes: number
  rss_bytes: number
  /** Requests the recorder has started and not yet ended. */
  requests_in_flight: number
  /** Requests the recorder has ended since it started. */
  requests_completed: number
  /** Task records the tracker dropped since it started. */
  records_dropped: number
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
}

/** Result of `pruneStaleTasks`. */
export interface PruneResult {
  /** Active entries removed. */
  removedTasks: number
  /** Processor id prefixes whose entries were removed and which left the heartbeat list. */
  stalePrefixes: string[]
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
 * Removes the active entries of recorders whose heartbeat expired, and
 * their prefixes from the heartbeat list. A recorder that writes a
 * heartbeat again before the removal runs keeps its entries. Trackers that
 * keep no heartbeats remove nothing.
 */
export async function pruneStaleTasks(tracker: Tracker): Promise<PruneResult> {
  if (tracker.pruneStaleTasks === undefined) return { removedTasks: 0, stalePrefixes: [] }
  return tracker.pruneStaleTasks()
}

/**
 * Returns whether an active entry belongs to a stopped recorder: its
 * processor id starts with one of the stale prefixes. Every prefix ends
 * with `.`, so `host/1-0-1.` never matches the ids of `host/1-0-10.`.
 */
export function isStaleProcessor(processorId: string, stalePrefixes: readonly string[]): boolean {
  return stalePrefixes.some((prefix) => processorId.startsWith(prefix))
}

/** Decodes a stored heartbeat. Returns null for text that is not a heartbeat object. */
export function decodeHeartbeat(text: unknown): Heartbeat | null {
  if (typeof text !== 'string') return null

  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null

  const record = value as Partial<Heartbeat>
  return typeof record.processor_id_prefix === 'string' ? (record as Heartbeat) : null
}

/** Sorts heartbeats by processor id prefix, so that readers list processes in a stable order. */
export function sortHeartbeats(heartbeats: Heartbeat[]): Heartbeat[] {
  return heartbeats.sort((a, b) => (a.processor_id_prefix < b.processor_id_prefix ? -1 : 1))
}
