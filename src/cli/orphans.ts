/**
 * Active tasks whose recording process stopped without removing them: its
 * heartbeat expired. `live` and `recent` mark them ORPHANED, and `check`
 * leaves them out of its stalled count, because `prune` is their remedy.
 */
import type { HttpTask } from '../task/http-task'
import { createStaleProcessorTest, readHeartbeats, type Heartbeat } from '../trackers/heartbeat'
import { RedisTracker } from '../trackers/redis-tracker'
import type { TrackerConnection } from './connect'
import { quoteForShell } from './detail'
import { sanitizeText } from '../util/sanitize'
import { WRONG_TYPE_KEY_ADVICE } from './skipped'

/** Heartbeat facts that the readers use: live and stopped recorders, and keys of the wrong type. */
export interface HeartbeatState {
  /** Heartbeats of the recorders alive now. */
  live: Heartbeat[]
  /** Processor id prefixes whose heartbeat expired. */
  stalePrefixes: string[]
  /** Heartbeat keys that exist with another Redis type than the recorder writes, and that type. */
  wrongTypeKeys: readonly WrongTypeHeartbeatKey[]
}

export interface WrongTypeHeartbeatKey {
  key: string
  /** Redis type that the recorder writes: `set` for the heartbeat list, `string` for a heartbeat. */
  expected: 'set' | 'string'
}

/** Heartbeat keys named in a notice; the notice counts the others. */
const MAX_NAMED_KEYS = 3

/**
 * Reads the heartbeats and names the heartbeat keys of the wrong type.
 * Returns undefined when the read fails for another reason: heartbeats are
 * optional, so the caller goes on without them.
 */
export async function readHeartbeatState(connection: TrackerConnection): Promise<HeartbeatState | undefined> {
  const { tracker } = connection
  try {
    const { live, stalePrefixes, wrongTypeKeys = [] } = await readHeartbeats(tracker)
    return { live, stalePrefixes, wrongTypeKeys: wrongTypeKeys.map((key) => ({ key, expected: 'string' })) }
  } catch (error) {
    // SMEMBERS of a heartbeat list that is not a set.
    if (tracker instanceof RedisTracker && error instanceof Error && error.message.startsWith('WRONGTYPE')) {
      return { live: [], stalePrefixes: [], wrongTypeKeys: [{ key: tracker.heartbeatKeys.heartbeats, expected: 'set' }] }
    }
    return undefined
  }
}

/**
 * Returns the notice for heartbeat keys of the wrong type, which another
 * program may have written: no reader can tell whether their recording
 * processes stopped. `consequence` names what the command did about it.
 */
export function describeWrongTypeHeartbeats(
  keys: readonly WrongTypeHeartbeatKey[],
  consequence = 'does not mark their requests ORPHANED',
): string {
  const named = keys
    .slice(0, MAX_NAMED_KEYS)
    .map(({ key, expected }) => `${sanitizeText(JSON.stringify(key))}, not a ${expected}`)
  if (keys.length > MAX_NAMED_KEYS) named.push(`and ${keys.length - MAX_NAMED_KEYS} more`)
  const subject = keys.length === 1 ? 'a heartbeat key has' : `${keys.length} heartbeat keys have`
  return (
    `${subject} the wrong type (${named.join('; ')}), so web-top-cli cannot tell which recording ` +
    `processes stopped and ${consequence}; ${WRONG_TYPE_KEY_ADVICE}`
  )
}

/** Returns the active tasks, by processor id, whose process has one of `stalePrefixes`. */
export function findOrphaned(
  active: ReadonlyMap<string, HttpTask>,
  stalePrefixes: readonly string[],
): Set<HttpTask> {
  const orphaned = new Set<HttpTask>()
  if (stalePrefixes.length === 0) return orphaned
  const isStale = createStaleProcessorTest(stalePrefixes)
  for (const [processorId, task] of active) {
    if (isStale(processorId)) orphaned.add(task)
  }
  return orphaned
}

/**
 * Returns the notice about active requests whose recording process
 * stopped, with the `prune` command that ends them: on `displayUrl`
 * (password masked), under `keyPrefix`. `urlFromEnvironment` is true
 * when the URL came from TOP_TRACKER_URL, which `prune` reads too.
 */
export function describeOrphaned(
  count: number,
  displayUrl: string,
  keyPrefix = '',
  urlFromEnvironment = false,
): string {
  const { command, advice } = describePruneCommand(displayUrl, keyPrefix, urlFromEnvironment)
  // A prefix found on the server may contain characters that a terminal acts on.
  const prune = sanitizeText(command)
  if (count === 1) {
    return (
      '1 active request is ORPHANED: the process that recorded it stopped without ending it ' +
      `(its heartbeat expired); ${prune} ends it${advice}`
    )
  }
  return (
    `${count} active requests are ORPHANED: the processes that recorded them stopped without ending ` +
    `them (their heartbeats expired); ${prune} ends them${advice}`
  )
}

/** Word in place of a masked secret in a command to copy. */
const PASSWORD_PLACEHOLDER = 'PASSWORD'

/**
 * Returns a `prune` command that works when pasted, and the advice that it
 * needs, if any, starting with a comma. A URL with a masked password does
 * not work, so a URL from TOP_TRACKER_URL is left out of the command, and
 * any other gets a placeholder in place of the password.
 */
function describePruneCommand(
  displayUrl: string,
  keyPrefix: string,
  urlFromEnvironment: boolean,
): { command: string; advice: string } {
  const prefixOption = keyPrefix === '' ? '' : ` --prefix ${quoteForShell(keyPrefix)}`
  if (!displayUrl.includes('***')) {
    return { command: `web-top-cli prune --tracker-url ${quoteForShell(displayUrl)}${prefixOption}`, advice: '' }
  }
  if (urlFromEnvironment) return { command: `web-top-cli prune${prefixOption}`, advice: '' }

  const url = displayUrl.replaceAll('***', PASSWORD_PLACEHOLDER)
  return {
    command: `web-top-cli prune --tracker-url ${quoteForShell(url)}${prefixOption}`,
    advice:
      `, with the password in place of ${PASSWORD_PLACEHOLDER} ` +
      '(or with the URL in TOP_TRACKER_URL and no --tracker-url)',
  }
}
