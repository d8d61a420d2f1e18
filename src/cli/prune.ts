/**
 * The `prune` command: removes the active tasks of recording processes
 * whose heartbeat stopped, which crashed or were killed before they could
 * remove their own.
 */
import { pruneStaleTasks } from '../trackers/heartbeat'
import { CliError } from './cli-error'
import { connectTracker } from './connect'
import { countOf } from './format'
import { describePrefix } from './live-header'
import type { TrackerOptions } from './options'

export interface PruneStreams {
  stdout: { write(text: string): unknown }
}

/** Prunes stale tasks, prints what was removed and returns the exit code. */
export async function runPrune(
  options: TrackerOptions,
  streams: PruneStreams = { stdout: process.stdout },
): Promise<number> {
  const connection = await connectTracker(options.trackerUrl, options.keyPrefix, options.apiKey)
  try {
    if (connection.tracker.kind === 'http') {
      throw new CliError(
        `Cannot prune ${connection.displayUrl}: the HTTP tracker endpoint is read-only; ` +
          'prune the Redis tracker the app records to',
      )
    }
    let result
    try {
      result = await pruneStaleTasks(connection.tracker)
    } catch (error) {
      throw new CliError(`Cannot prune the tracker at ${connection.displayUrl}: ${connection.describeFailure(error)}`)
    }
    if (result.stalePrefixes.length === 0) {
      streams.stdout.write(
        'No stopped recording process found; nothing removed. ' +
          '(Tasks of writers without heartbeats, such as the Python tracker, are never pruned.)\n',
      )
      return 0
    }
    const processes = [...new Set(result.stalePrefixes.map(describePrefix))].join(', ')
    streams.stdout.write(
      `Removed ${countOf(result.removedTasks, 'active task')} of ${countOf(result.stalePrefixes.length, 'stopped recorder')}: ${processes}\n`,
    )
    return 0
  } finally {
    await connection.close()
  }
}
