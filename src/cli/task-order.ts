/**
 * The order in which the reader shows tasks: active ones longest running
 * first, completed ones as the tracker lists them (most recent first).
 */
import type { HttpTask } from '../task/http-task'
import { parseIsoTime } from '../task/time'
import type { TaskSnapshot } from '../trackers/tracker'

/** Selection of tasks a listing shows: all, only active ones or only completed ones. */
export type TaskMode = 'all' | 'active' | 'complete'

export const TASK_MODES: readonly TaskMode[] = ['all', 'active', 'complete']

/**
 * Returns the active tasks, the one that started first at the top. Tasks
 * without a readable start time come last; ties keep the processor id order,
 * so rows do not swap places between refreshes.
 */
export function sortActiveTasks(active: ReadonlyMap<string, HttpTask>): HttpTask[] {
  const entries = [...active.entries()].map(([processorId, task]) => ({
    processorId,
    task,
    startedAt: parseIsoTime(task.started_at) ?? Number.POSITIVE_INFINITY,
  }))
  entries.sort((a, b) => {
    if (a.startedAt !== b.startedAt) return a.startedAt < b.startedAt ? -1 : 1
    if (a.processorId === b.processorId) return 0
    return a.processorId < b.processorId ? -1 : 1
  })
  return entries.map((entry) => entry.task)
}

/** Returns the tasks a mode shows: active first, then completed, at most `limit` in all. */
export function selectTasks(snapshot: TaskSnapshot, mode: TaskMode, limit?: number): HttpTask[] {
  const active = mode === 'complete' ? [] : sortActiveTasks(snapshot.active)
  const completed = mode === 'active' ? [] : snapshot.completed
  const tasks = [...active, ...completed]
  return limit === undefined ? tasks : tasks.slice(0, limit)
}
