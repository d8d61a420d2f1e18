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

/** Returns the state of a record: active until it has an end time. */
export function getTaskState(task: Task): TaskState {
  if (task.ended_at == null) return 'active'
  return task.recorded_successfully === false ? 'aborted' : 'completed'
}
