/**
 * Task records as they travel on the wire. Field names are snake_case and
 * spelled exactly as the Python Top Framework writes them, so that either
 * side can read the other's records. Every field may be missing or `null`.
 */

/** A `[name, value]` header pair. Repeated headers appear as repeated pairs. */
export type HeaderPair = [name: string, value: string]

/** One unit of tracked work, as stored by any tracker. */
export interface Task {
  task_id?: number | string | null
  task_name?: string | null
  host_name?: string | null
  process_id?: number | null
  thread_id?: number | null
  process_internal_id?: string | null
  processor_name?: string | null
  /** ISO 8601 with a UTC offset. */
  started_at?: string | null
  /** ISO 8601 with a UTC offset. */
  updated_at?: string | null
  /** ISO 8601 with a UTC offset; `null` while the task is active. */
  ended_at?: string | null
  /** `null` while active, `true` when ended normally, `false` when ended by cleanup or abort. */
  recorded_successfully?: boolean | null
  tags?: Record<string, string> | null
  command_line?: string[] | null
  [field: string]: unknown
}

/** One HTTP request and its response. */
export interface HttpTask extends Task {
  protocol?: string | null
  host?: string | null
  method?: string | null
  path?: string | null
  params?: Record<string, string | string[]> | null
  uri?: string | null
  client_ip_address?: string | null
  /** Names upper-cased, as the Python tracker stores them. */
  request_headers?: HeaderPair[] | null
  status_code?: number | null
  status_message?: string | null
  response_headers?: HeaderPair[] | null
}

/** State of a task as a reader sees it. */
export type TaskState = 'active' | 'completed' | 'aborted'

/** Records that a reader took from a list of completed tasks, such as `past_tasks`. */
const completedRecords = new WeakSet<Task>()

/**
 * Marks a record as read from a list of completed tasks, so that it counts
 * as ended even when a writer left out its end time.
 */
export function markCompleted(task: Task): void {
  completedRecords.add(task)
}

/**
 * Returns true when the task has ended: the record has an end time, or a
 * `recorded_successfully` that writers leave `null` until the end, or it
 * was read from a list of completed tasks (`markCompleted`).
 */
export function hasEnded(task: Task): boolean {
  if (task.ended_at != null) return true
  return typeof task.recorded_successfully === 'boolean' || completedRecords.has(task)
}

/** Returns the state of a record: active until it has ended (`hasEnded`). */
export function getTaskState(task: Task): TaskState {
  if (!hasEnded(task)) return 'active'
  return task.recorded_successfully === false ? 'aborted' : 'completed'
}
