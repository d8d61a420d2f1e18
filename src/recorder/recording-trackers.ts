/**
 * The trackers that the open recorders of this process write to, so that a
 * tracker endpoint without a `tracker` option serves what the app records,
 * as Fastify's route serves the plugin's tracker.
 */
import type { Tracker } from '../trackers/tracker'
import { getProcessShared } from '../util/process-shared'

/**
 * Open recorders per tracker, shared by every copy of the package, so that
 * an endpoint of the ES module build serves what a middleware of the
 * CommonJS build records.
 */
const recordersByTracker = getProcessShared('recording-trackers', () => new Map<Tracker, number>())

/** Counts a recorder that writes to `tracker`, until `removeRecordingTracker`. */
export function addRecordingTracker(tracker: Tracker): void {
  recordersByTracker.set(tracker, (recordersByTracker.get(tracker) ?? 0) + 1)
}

/** Stops counting a recorder that `addRecordingTracker` counted. */
export function removeRecordingTracker(tracker: Tracker): void {
  const count = recordersByTracker.get(tracker) ?? 0
  if (count <= 1) recordersByTracker.delete(tracker)
  else recordersByTracker.set(tracker, count - 1)
}

/** Returns the trackers that open recorders write to, in the order their first recorder opened. */
export function listRecordingTrackers(): Tracker[] {
  return [...recordersByTracker.keys()]
}
