/**
 * The `tail` command: prints each completed request as one line as it
 * happens, like an access log, or as NDJSON. It follows `task_updates`;
 * after a lost connection it reads back from `past_tasks` what ended
 * meanwhile. A tracker without an update stream (http://) is polled. Both
 * report on stderr when the tracker may have trimmed requests before they
 * were read.
 */
import { OUTCOME_TAG } from '../task/cleanup-end'
import {
  getCompletedKey,
  getResponseBodyLength,
  getDurationMs,
  getEndedAtMs,
  getOriginalIp,
  getProcessLabel,
  getStatusCode,
  getUserAgent,
} from '../task/derived'
import { hasEnded, type HttpTask } from '../task/http-task'
import { HttpTrackerError } from '../trackers/http-tracker'
import { isActiveRecordReason } from '../trackers/snapshot'
import type { TaskSnapshot } from '../trackers/tracker'
import { decodeTask, isOversizedReason } from '../task/wire'
import { statusColour } from './columns'
import { CliError } from './cli-error'
import { connectTracker, diagnoseReadFailure, type TrackerConnection } from './connect'
import { describeUnusedPrefix } from './empty-prefix'
import { createTaskFilter, type TaskFilterOptions, type TaskPredicate } from './filters'
import { countOf, formatBytes, formatDuration } from './format'
import { exitOnHangup } from './hangup'
import { formatLatency } from './live-header'
import { findMissingPeriod, findNewestEnd, type MissingPeriod } from './missing-period'
import type { TrackerOptions } from './options'
import { CUT_NOTICE, stringifyForTerminal } from './json-output'
import { describeReducedRead, readFewerWhileTooLarge, type ReducedRead } from './read-fewer'
import { RepeatedFailureReport } from './repeated-failure'
import { sanitizeText } from '../util/sanitize'
import { describeSkipped, RAISE_LIMIT_ADVICE } from './skipped'
import { messageStream } from './standard-streams'
import { paint, shouldUseColour } from './style'
import { openUpdateStream, type UpdateStream } from './update-stream'

/** Most completed tasks read when polling or reading back after a gap. */
export const TAIL_READ_LIMIT = 1_000

/**
 * Most completed tasks read again when a read of `TAIL_READ_LIMIT` did not
 * reach back to the previous one, so that a tracker that keeps more returns
 * the tasks in between. Ten thousand records of about 2 KB stay well below
 * the HTTP tracker's 64 MB response limit.
 */
export const TAIL_GAP_READ_LIMIT = 10_000

/** Completed-task keys remembered to print each task once. */
const MAX_REMEMBERED_KEYS = 50_000

const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const

export interface TailOptions extends TrackerOptions {
  /** Prints one JSON record per line instead of access-log lines. */
  json: boolean
  filter: TaskFilterOptions
  /** Seconds between reads of a tracker without an update stream. */
  pollSeconds: number
}

export interface TailStreams {
  stdout: { isTTY?: boolean; write(text: string): unknown; on?(event: 'error', listener: (error: Error) => void): unknown }
  stderr: { write(text: string): unknown }
}

/**
 * Prints completed requests until interrupted, and resolves with the exit
 * code. Throws a `CliError` when the tracker cannot be reached.
 */
export async function runTail(
  options: TailOptions,
  streams: TailStreams = { stdout: process.stdout, stderr: messageStream },
): Promise<number> {
  const connection = await connectTracker(options.trackerUrl, options.keyPrefix, options.apiKey)
  const tail = new Tail(connection, options, streams)
  try {
    await tail.start()
  } catch (error) {
    // A signal stops the tail, which closes the tracker and so fails the read in flight.
    if (tail.stopped) return tail.exited
    await tail.stop(1)
    if (error instanceof CliError) throw error
    throw new CliError(await diagnoseReadFailure(connection, error))
  }
  return tail.exited
}

class Tail {
  readonly exited: Promise<number>
  readonly #connection: TrackerConnection
  readonly #options: TailOptions
  readonly #streams: TailStreams
  readonly #matches: TaskPredicate
  readonly #colour: boolean
  readonly #printed = new Set<string>()
  readonly #startedMs = Date.now()

  #stream: UpdateStream | undefined
  #gapStartMs: number | undefined
  #pollTimer: NodeJS.Timeout | undefined
  /** End time of the newest completed task that any read returned, in the tracker's clock. */
  #newestReadMs: number | undefined
  #stopped = false
  /** Number of messages on the update stream that were not task records. */
  #skippedUpdates = 0
  #reportedSkippedRecords = false
  /** Whether the note on a value cut from JSON output was printed. */
  #reportedCut = false
  /** Failed polls, reported once and then counted, so a tracker that is down does not fill the terminal. */
  readonly #pollFailures = new RepeatedFailureReport((line) => this.#streams.stderr.write(`web-top-cli: ${line}\n`))
  #resolveExit: (code: number) => void = () => {}

  constructor(connection: TrackerConnection, options: TailOptions, streams: TailStreams) {
    this.#connection = connection
    this.#options = options
    this.#streams = streams
    this.#matches = createTaskFilter(options.filter)
    this.#colour = !options.json && shouldUseColour(streams.stdout)
    this.exited = new Promise((resolve) => {
      this.#resolveExit = resolve
    })
  }

  async start(): Promise<void> {
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as Array<keyof typeof SIGNAL_EXIT_CODES>) {
      process.on(signal, this.#onSignal)
    }
    // `web-top-cli tail | head` closes the pipe: that is the end, not an error.
    this.#streams.stdout.on?.('error', (error: Error & { code?: string }) => {
      void this.stop(error.code === 'EPIPE' ? 0 : 1)
    })

    this.#stream = await openUpdateStream(this.#connection.tracker, {
      onUpdate: this.#onUpdate,
      onDisconnect: this.#onDisconnect,
      onSubscribed: () => void this.#readBack(),
    })
    if (this.#stream !== undefined) {
      // A mistyped --prefix would otherwise leave the tail silent for ever.
      const unused = await describeUnusedPrefix(this.#connection, this.#options.keyPrefix)
      if (unused !== undefined) this.#streams.stderr.write(`web-top-cli: ${unused}\n`)
      return
    }

    // Without an update stream, what is in the tracker now counts as printed.
    const { value: tasks } = await readFewerWhileTooLarge(TAIL_READ_LIMIT, (limit) => this.#read(limit))
    for (const task of tasks) this.#remember(task)
    this.#newestReadMs = findNewestEnd(tasks)
    this.#armPoll()
  }

  readonly #onUpdate = (json: string): void => {
    const result = decodeTask(json, { maxRecordBytes: this.#options.maxRecordBytes })
    if (!result.ok) {
      this.#skipUpdate(result.reason)
      return
    }
    if (hasEnded(result.task)) this.#print(result.task)
  }

  /** Counts a message that is not a task record; the first one is reported at once, the total on exit. */
  #skipUpdate(reason: string): void {
    this.#skippedUpdates++
    if (this.#skippedUpdates > 1) return
    const message = isOversizedReason(reason)
      ? `web-top-cli: skipped a message on the update stream (${sanitizeText(reason)}); ${RAISE_LIMIT_ADVICE}; `
      : `web-top-cli: skipped a message on the update stream that is not a task record (${sanitizeText(reason)}); `
    this.#streams.stderr.write(`${message}further ones are counted\n`)
  }

  readonly #onDisconnect = (reason: string, sinceMs = Date.now()): void => {
    this.#gapStartMs ??= sinceMs
    this.#streams.stderr.write(`web-top-cli: update stream lost (${sanitizeText(reason)}); reconnecting\n`)
  }

  /** Prints what ended during a gap in the stream, oldest first, and reports how long the gap was. */
  async #readBack(): Promise<void> {
    const gapStartMs = this.#gapStartMs ?? Date.now()
    this.#gapStartMs = undefined
    let read: CompletedRead
    try {
      read = await this.#readSince(gapStartMs)
    } catch (error) {
      await this.#reportReadFailure(error)
      return
    }
    const printedBefore = this.#printed.size
    this.#printNew(read.tasks)
    const recovered = this.#printed.size - printedBefore
    const gap = formatDuration(Date.now() - gapStartMs) ?? '?'
    let message = `web-top-cli: reconnected after a gap of ${gap}; ${countOf(recovered, 'request')} read back from past_tasks`
    if (read.missing !== undefined) message += `; ${describeMissing(read.missing)}`
    this.#streams.stderr.write(`${message}\n`)
  }

  #armPoll(): void {
    this.#pollTimer = setTimeout(() => void this.#poll(), this.#options.pollSeconds * 1000)
  }

  async #poll(): Promise<void> {
    try {
      const read = await this.#readSince(this.#newestReadMs)
      this.#pollFailures.succeed()
      this.#printNew(read.tasks)
      const newestMs = findNewestEnd(read.tasks)
      if (newestMs !== undefined) this.#newestReadMs = Math.max(this.#newestReadMs ?? newestMs, newestMs)
      if (read.missing !== undefined && read.reduced === undefined) {
        // A poll cannot tell a list trimmed at its cap from one that a restart of the app or a clear emptied.
        this.#streams.stderr.write(
          `web-top-cli: ${describeMissing(read.missing)}, because the tracker keeps only the newest, or lost ` +
            'them in a restart of its app or a clear; if it keeps only the newest, a shorter --refresh-rate ' +
            'reads it more often\n',
        )
      } else if (read.missing !== undefined && read.reduced !== undefined) {
        this.#streams.stderr.write(
          `web-top-cli: ${describeMissing(read.missing)}, because ${describeReducedRead(read.reduced)}; ` +
            'a shorter --refresh-rate reads it more often\n',
        )
      } else if (read.limitReached !== undefined) {
        const cause =
          read.reduced === undefined
            ? `the read stopped at its limit of ${read.limitReached} requests`
            : describeReducedRead(read.reduced)
        this.#streams.stderr.write(
          `web-top-cli: requests that ended before the oldest one read may be missing, because ${cause}; ` +
            'a shorter --refresh-rate reads more often\n',
        )
      }
    } catch (error) {
      await this.#reportReadFailure(error, (message) => this.#pollFailures.fail(message))
    }
    if (!this.#stopped) this.#armPoll()
  }

  /**
   * Reads the completed tasks and finds the period after `sinceMs` whose
   * tasks may have been trimmed before this read. A read that stopped at
   * its limit without reaching back to `sinceMs` is made again with a larger
   * limit, because the tracker may still keep the tasks in between. With
   * `sinceMs` undefined, when no earlier read returned a task, the period
   * is unknown, and only `limitReached` shows that tasks may be missing.
   * NOTE: so a burst that overfills an empty store below that limit is not
   * reported, because the endpoint does not tell how many tasks it keeps.
   * When a reply is over the HTTP tracker's size limit, fewer tasks are
   * read (`readFewerWhileTooLarge`), so that tail still prints them and
   * reports the period it could not read.
   */
  async #readSince(sinceMs: number | undefined): Promise<CompletedRead> {
    const first = await readFewerWhileTooLarge(TAIL_READ_LIMIT, (limit) => this.#read(limit))
    const firstRead = first.value
    const firstMissing = sinceMs === undefined ? undefined : findMissingPeriod(firstRead, sinceMs, Date.now())
    if (first.limit < TAIL_READ_LIMIT) {
      const limitReached = sinceMs === undefined && firstRead.length >= first.limit ? first.limit : undefined
      const reduced = { requested: TAIL_READ_LIMIT, read: first.limit }
      return { tasks: firstRead, missing: firstMissing, limitReached, reduced }
    }
    const reachedBack = sinceMs !== undefined && firstMissing === undefined
    if (firstRead.length < TAIL_READ_LIMIT || reachedBack) {
      return { tasks: firstRead, missing: firstMissing, limitReached: undefined, reduced: undefined }
    }

    let tasks: HttpTask[]
    try {
      tasks = await this.#read(TAIL_GAP_READ_LIMIT)
    } catch (error) {
      if (!(error instanceof HttpTrackerError && error.code === 'RESPONSE_TOO_LARGE')) throw error
      const limitReached = sinceMs === undefined ? TAIL_READ_LIMIT : undefined
      const reduced = { requested: TAIL_GAP_READ_LIMIT, read: TAIL_READ_LIMIT }
      return { tasks: firstRead, missing: firstMissing, limitReached, reduced }
    }
    const missing = sinceMs === undefined ? undefined : findMissingPeriod(tasks, sinceMs, Date.now())
    const limitReached = sinceMs === undefined && tasks.length >= TAIL_GAP_READ_LIMIT ? TAIL_GAP_READ_LIMIT : undefined
    return { tasks, missing, limitReached, reduced: undefined }
  }

  /** Reports a failed read through `report`, or as one line, unless `stop()` closed the tracker under it. */
  async #reportReadFailure(error: unknown, report?: (message: string) => void): Promise<void> {
    if (this.#stopped) return
    const message = await diagnoseReadFailure(this.#connection, error)
    if (this.#stopped) return
    if (report === undefined) this.#streams.stderr.write(`web-top-cli: ${message}\n`)
    else report(message)
  }

  async #read(limit: number): Promise<HttpTask[]> {
    const snapshot = await this.#connection.tracker.read({
      completedLimit: limit,
      maxRecordBytes: this.#options.maxRecordBytes,
    })
    this.#reportSkippedRecords(snapshot)
    return snapshot.completed
  }

  /**
   * Says once that a read of the completed list skipped records. Each poll
   * reads the same list again, so counting them at every read would repeat
   * the records already reported.
   */
  #reportSkippedRecords(snapshot: TaskSnapshot): void {
    const skipped = snapshot.skipped - (snapshot.activeSkipped ?? 0)
    if (skipped <= 0 || this.#reportedSkippedRecords) return
    this.#reportedSkippedRecords = true
    const reasons = snapshot.skipReasons.filter((reason) => !isActiveRecordReason(reason))
    this.#streams.stderr.write(`web-top-cli: ${describeSkipped(skipped, reasons)}; this note is printed once\n`)
  }

  /** Prints the tasks not printed yet that ended since `tail` started, oldest first. */
  #printNew(tasks: readonly HttpTask[]): void {
    // The tracker lists the newest first; reversed, tasks that ended in the
    // same millisecond keep the order in which they were recorded.
    const fresh = [...tasks]
      .reverse()
      .filter((task) => (getEndedAtMs(task) ?? 0) >= this.#startedMs)
      .sort((a, b) => (getEndedAtMs(a) ?? 0) - (getEndedAtMs(b) ?? 0))
    for (const task of fresh) this.#print(task)
  }

  #print(task: HttpTask): void {
    if (!this.#remember(task)) return
    if (!this.#matches(task, Date.now())) return
    const line = this.#options.json
      ? stringifyForTerminal(task, undefined, this.#onCut)
      : formatAccessLine(task, this.#colour)
    this.#streams.stdout.write(`${line}\n`)
  }

  /** Says once that a record was printed with a value cut, as `stringifyForTerminal` cuts it. */
  readonly #onCut = (): void => {
    if (this.#reportedCut) return
    this.#reportedCut = true
    this.#streams.stderr.write(`web-top-cli: ${CUT_NOTICE}; this note is printed once\n`)
  }

  /** Remembers a task; returns false when it was remembered before. */
  #remember(task: HttpTask): boolean {
    const key = getCompletedKey(task)
    if (this.#printed.has(key)) return false
    this.#printed.add(key)
    if (this.#printed.size > MAX_REMEMBERED_KEYS) {
      // A Set iterates in insertion order, so the first key is the oldest.
      this.#printed.delete(this.#printed.values().next().value as string)
    }
    return true
  }

  readonly #onSignal = (signal: keyof typeof SIGNAL_EXIT_CODES): void => {
    exitOnHangup(signal)
    void this.stop(SIGNAL_EXIT_CODES[signal])
  }

  /** Whether `stop()` has run, as after a signal. */
  get stopped(): boolean {
    return this.#stopped
  }

  async stop(code: number): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#pollTimer)
    if (this.#skippedUpdates > 0) {
      this.#streams.stderr.write(
        `web-top-cli: ${countOf(this.#skippedUpdates, 'message')} on the update stream skipped: not task records\n`,
      )
    }
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as Array<keyof typeof SIGNAL_EXIT_CODES>) {
      process.off(signal, this.#onSignal)
    }
    try {
      await this.#stream?.close()
      await this.#connection.close()
    } catch {
      // Closing; nothing the user can act on.
    }
    this.#resolveExit(code)
  }
}

/** The completed tasks of one read, newest first, and what may be missing before them. */
interface CompletedRead {
  tasks: HttpTask[]
  missing: MissingPeriod | undefined
  /**
   * The number of tasks requested, when a read with no earlier task to
   * reach back to returned that many, so that older ones may be unread.
   */
  limitReached: number | undefined
  /** Set when a reply was too large, so that `tasks` are those of a smaller read. */
  reduced: ReducedRead | undefined
}

function describeMissing(missing: MissingPeriod): string {
  const duration = formatDuration(missing.toMs - missing.fromMs) ?? '?'
  return `requests that ended in the ${duration} before the oldest one read may be missing`
}

/**
 * Formats a completed request as one access-log line: end time (UTC),
 * status, duration, method, path, response length, client IP, process and
 * user agent, every field sanitised. A request that did not end with a
 * complete response gets its `web_top.outcome` tag as a last field
 * (`outcome=aborted`, `timeout`, `rejected`, `recorder_closed`, `process_stopped`), so
 * that a crash and a client that went away do not look alike.
 */
export function formatAccessLine(task: HttpTask, colour: boolean): string {
  const endedAtMs = getEndedAtMs(task)
  const time = endedAtMs === undefined ? '-' : new Date(endedAtMs).toISOString()
  const statusCode = getStatusCode(task)
  const status = statusCode === undefined ? '-' : String(statusCode)
  const duration = getDurationMs(task, Date.now())
  const fields = [
    time,
    paint(status.padStart(3), statusColour(statusCode), colour),
    formatLatency(duration).padStart(8),
    sanitizeText(task.method ?? '-'),
    sanitizeText(task.path ?? task.uri ?? '-'),
    formatBytes(getResponseBodyLength(task)) ?? '-',
    sanitizeText(getOriginalIp(task) ?? '-'),
    sanitizeText(getProcessLabel(task) ?? '-'),
    sanitizeText(JSON.stringify(getUserAgent(task) ?? '-')),
  ]
  const outcome = task.tags?.[OUTCOME_TAG]
  if (typeof outcome === 'string') fields.push(`outcome=${sanitizeText(outcome)}`)
  return fields.join(' ')
}
