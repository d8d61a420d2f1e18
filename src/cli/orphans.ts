/**
 * Active tasks whose recording process stopped without removing them: its
 * heartbeat expired. `live` and `recent` mark them ORPHANED, and `check`
 * leaves them out of its stalled count, because `prune` is their remedy.
 */
import type { HttpTask } from '../task/http-task'
import { isStaleProcessor, readHeartbeats } from '../trackers/heartbeat'
import type { TrackerConnection } from './connect'
import { quoteForShell } from './detail'
import { sanitizeText } from './sanitize'

/**
 * Returns the processor id prefixes whose heartbeat expired. Heartbeats are
 * optional, so a failed read of them returns none, as in `live`.
 */
export async function readStalePrefixes(connection: TrackerConnection): Promise<readonly string[]> {
  try {
    return (await readHeartbeats(connection.tracker)).stalePrefixes
  } catch {
    return []
  }
}

/** Returns the active tasks, by processor id, whose process has one of `stalePrefixes`. */
export function findOrphaned(
  active: ReadonlyMap<string, HttpTask>,
  stalePrefixes: readonly string[],
): Set<HttpTask> {
  const orphaned = new Set<HttpTask>()
  if (stalePrefixes.length === 0) return orphaned
  for (const [processorId, task] of active) {
    if (isStaleProcessor(processorId, stalePrefixes)) orphaned.add(task)
  }
  return orphaned
}

/**
 * Returns the notice about active requests whose recording process
 * stopped, with the `prune` command that ends them: on `displayUrl`
 * (password masked), under `keyPrefix`.
 */
export function describeOrphaned(count: number, displayUrl: string, keyPrefix = ''): string {
  const prefixOption = keyPrefix === '' ? '' : ` --prefix ${quoteForShell(keyPrefix)}`
  // A prefix found on the server may contain characters that a terminal acts on.
  const prune = sanitizeText(`web-top-cli prune --tracker-url ${quoteForShell(displayUrl)}${prefixOption}`)
  if (count === 1) {
    return (
      '1 active request is ORPHANED: the process that recorded it stopped without ending it ' +
      `(its heartbeat expired); ${prune} ends it`
    )
  }
  return (
    `${count} active requests are ORPHANED: the processes that recorded them stopped without ending ` +
    `them (their heartbeats expired); ${prune} ends them`
  )
}
