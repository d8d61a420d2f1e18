/**
 * Records and checks on the records in a test Redis that several test
 * files share: build an active record, wait for a set of completed tasks,
 * and count the records of each task.
 */
import type Redis from 'ioredis'
import type { HttpTask } from '../../src/index'
import { formatIsoTime } from '../../src/task/time'
import { waitFor } from './http'
import { readStoredTasks, type StoredTasks } from './redis-server'

/** Start time of the records that `activeRecord` builds. */
export const STARTED_AT = '2026-12-04T10:00:00.000000+00:00'

/** Builds an active record. `path` sets its length, and `updatedAt` changes it without changing the length. */
export function activeRecord(taskId: string, path: string, updatedAt = STARTED_AT): HttpTask {
  return {
    task_id: taskId,
    host_name: 'web-1',
    process_id: 4242,
    thread_id: 0,
    process_internal_id: taskId,
    method: 'GET',
    path,
    started_at: STARTED_AT,
    updated_at: updatedAt,
    ended_at: null,
  }
}

/** Fields that the recorder writes before `task_name`, and after `response_headers`, in its order. */
const RECORDER_FIXED_FIELDS = [
  'task_id',
  'process_internal_id',
  'started_at',
  'protocol',
  'host',
  'method',
  'path',
  'params',
  'uri',
  'client_ip_address',
  'request_headers',
] as const
const RECORDER_SHARED_FIELDS = ['host_name', 'process_id', 'thread_id', 'processor_name', 'command_line', 'tags'] as const

/**
 * Encodes an active record with its fields in the order the recorder
 * writes them, which is the layout that cleanup ends in Redis. Fields of
 * `task` that the recorder does not write are left out.
 */
export function recorderStartText(task: HttpTask): string {
  const ordered: Record<string, unknown> = {}
  for (const field of RECORDER_FIXED_FIELDS) if (field in task) ordered[field] = task[field]
  ordered.task_name = task.task_name ?? null
  ordered.updated_at = task.updated_at ?? task.started_at ?? null
  ordered.ended_at = null
  ordered.recorded_successfully = null
  ordered.status_code = null
  ordered.status_message = null
  ordered.response_headers = null
  for (const field of RECORDER_SHARED_FIELDS) if (field in task) ordered[field] = task[field]
  return JSON.stringify(ordered)
}

let completedSequence = 0

/** Builds a completed GET record that ended `endedAgoMs` before now and took `durationMs`. */
export function completedRecord(path: string, status: number, durationMs: number, endedAgoMs = 1_000): HttpTask {
  const endedMs = Date.now() - endedAgoMs
  return {
    task_id: `completed-${++completedSequence}`,
    started_at: formatIsoTime(endedMs - durationMs),
    ended_at: formatIsoTime(endedMs),
    method: 'GET',
    path,
    status_code: status,
  }
}

/** Time to wait after the expected records arrived, so that a duplicate record would arrive too. */
export const SETTLE_MS = 150

/**
 * Waits until `past_tasks` contains at least `count` records whose path is
 * `path`, then waits {@link SETTLE_MS} and returns everything stored.
 */
export async function waitForPath(
  client: Redis,
  path: string,
  count = 1,
  keyPrefix = '',
): Promise<StoredTasks> {
  await waitFor(`${count} completed task(s) for ${path}`, async () => {
    const stored = await readStoredTasks(client, keyPrefix)
    return stored.pastTasks.filter((task) => task.path === path).length >= count ? true : undefined
  })
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
  return readStoredTasks(client, keyPrefix)
}

/** Returns the completed tasks with this path, most recent first. */
export function tasksFor(stored: StoredTasks, path: string): HttpTask[] {
  return stored.pastTasks.filter((task) => task.path === path)
}

/** Returns how many records each task id has. */
export function countByTaskId(tasks: HttpTask[]): Map<unknown, number> {
  const counts = new Map<unknown, number>()
  for (const task of tasks) counts.set(task.task_id, (counts.get(task.task_id) ?? 0) + 1)
  return counts
}

/** Waits until the processors hash has exactly `count` entries and returns them. */
export async function waitForActive(client: Redis, count: number, keyPrefix = ''): Promise<HttpTask[]> {
  return waitFor(`${count} active task(s)`, async () => {
    const stored = await readStoredTasks(client, keyPrefix)
    const active = Object.values(stored.processors)
    return active.length === count ? active : undefined
  })
}

/**
 * Publishes `record` on `channel` every 200 ms until `tail` prints its path,
 * for at most 15 s. `tail` has no sign that its subscription is ready, so
 * the first publishes may reach no subscriber.
 */
export async function publishUntilPrinted(
  client: Redis,
  channel: string,
  tail: { stdout(): string; stderr(): string },
  record: HttpTask,
): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!tail.stdout().includes(` ${record.path} `)) {
    if (Date.now() > deadline) throw new Error(`tail did not print ${record.path}; stderr:\n${tail.stderr()}`)
    await client.publish(channel, JSON.stringify(record))
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
