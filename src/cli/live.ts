/**
 * The `live` command: a full-screen view of active and completed requests.
 * Updates announced on `task_updates` are applied to the view's state as
 * they arrive and drawn within one frame interval. A read every refresh
 * interval resyncs the state: while the stream is connected, it fetches
 * only the active records that are new or changed length, and one slice of
 * the others to verify them (`VERIFY_SLICES`). Between updates the view
 * redraws once a second, so durations of active requests keep counting.
 */
import { DecodeCache } from '../trackers/decode-cache'
import { maskUrl } from '../util/mask-url'
import type { ReadOptions, TaskSnapshot } from '../trackers/tracker'
import { CliError, describeError } from './cli-error'
import type { Column } from './columns'
import { connectTracker, diagnoseReadFailure, type TrackerConnection } from './connect'
import { describeEmptyPrefix } from './empty-prefix'
import { countOf, formatDuration } from './format'
import { describeHeartbeatProcess, type SourceStatus, type StyledLine } from './live-header'
import { createViewSettings, followDetail, handleKey, type ViewSettings } from './live-input'
import { renderLiveFrame, type Frame, type LiveData } from './live-render'
import { readRecordFacts, type ActiveItem } from './live-tables'
import { LiveState } from './live-state'
import { describeWrongTypeHeartbeats, readHeartbeatState } from './orphans'
import { exitOnHangup, exitProcess } from './hangup'
import { exitCodeOfSignal, runWhileConnecting, SIGNAL_EXIT_CODES, type ExitSignal } from './live-startup'
import { composeScreenUpdate, TerminalScreen, type TerminalInput, type TerminalOutput } from './screen'
import { watchJobControl, type JobControl } from './job-control'
import { describeWrongTypeKeys } from './skipped'
import { messageStream } from './standard-streams'
import { shouldUseColour } from './style'
import { openUpdateStream, type UpdateStream } from './update-stream'

/** Most frames drawn per second when updates arrive faster. */
export const MAX_FRAMES_PER_SECOND = 20

/** Most completed tasks read per refresh and kept for the table. */
export const LIVE_COMPLETED_LIMIT = 500

/**
 * Number of slices of the active records. Each light read also fetches one
 * slice and compares it with the decode cache. A record rewritten with the
 * same length and without a publish is therefore shown right within this
 * many light reads (60 s at the default `--refresh-rate 2`). Every this
 * many light reads also reload the completed records, which otherwise come
 * only from the update stream.
 */
export const VERIFY_SLICES = 30

/**
 * Returns the options of a resync read. A light read (`changedOnly`) runs
 * only while the update stream is connected, on which each completed record
 * has already arrived as its end event, and a clear still shows through
 * `last_cleared_at`. So it leaves out the completed records, except at every
 * `VERIFY_SLICES`th light read since the last full read. `lightReads`
 * counts the light reads before this one.
 */
export function resyncReadOptions(changedOnly: boolean, decodeCache: DecodeCache, lightReads = 0): ReadOptions {
  const readsCompleted = !changedOnly || (lightReads + 1) % VERIFY_SLICES === 0
  return {
    completedLimit: readsCompleted ? LIVE_COMPLETED_LIMIT : 0,
    decodeCache,
    changedOnly,
    verifySlices: VERIFY_SLICES,
  }
}

/** Maximum time between two frames, so that durations and the clock keep moving. */
const TICK_INTERVAL_MS = 1_000

/**
 * How long a message about the update stream (a reconnection, a rejected
 * SUBSCRIBE) stays in the status line, which is one row: a message that
 * stayed would hide the ones after it for good.
 */
const STREAM_NOTICE_MS = 60_000

/** Time in ms without a reply to a read, after which the status line shows that the data is from the last read. */
const SLOW_READ_NOTICE_MS = 3_000

const MIN_FRAME_INTERVAL_MS = 1000 / MAX_FRAMES_PER_SECOND

/**
 * How long the diagnosis of a Redis Cluster (`TrackerConnection.diagnose`)
 * serves the failed reads that follow, so that an outage sends its
 * `CLUSTER NODES` probes once per interval, not at every refresh.
 */
const CLUSTER_DIAGNOSIS_INTERVAL_MS = 10_000

/**
 * Set to `render` in tests only: the draw after the first frame throws, to
 * check that an uncaught error still restores the terminal.
 */
const TEST_FAULT_VARIABLE = 'WEB_TOP_CLI_TEST_FAULT'

export interface LiveOptions {
  trackerUrl: string
  keyPrefix: string | undefined
  /** Key for an http(s) tracker URL. */
  apiKey?: string | undefined
  refreshRateSeconds: number
  activeColumns: readonly Column[]
  completedColumns: readonly Column[]
  /** Length of the window of the figures in the header, in seconds. @default 60 */
  windowSeconds?: number
  /** An active request running this long is shown red. @default 5 */
  slowAfterSeconds?: number
  /** An active request running this long is marked STALLED and pinned at the top. @default 30 */
  stallAfterSeconds?: number
  /** Maximum length of a record or update decoded, in UTF-8 bytes (`ReadOptions.maxRecordBytes`). */
  maxRecordBytes?: number
}

export const LIVE_DEFAULTS = { windowSeconds: 60, slowAfterSeconds: 5, stallAfterSeconds: 30 } as const

export interface LiveStreams {
  stdout: TerminalOutput & NodeJS.EventEmitter
  stdin: TerminalInput
}

/**
 * Runs the live view until `q`, Ctrl-C or a signal, and returns the exit
 * code. Throws a `CliError` before the view opens when the tracker cannot be
 * reached or read. Until then a terminal shows that the view is connecting,
 * and `q`, Ctrl-C or a signal ends it.
 */
export async function runLive(
  options: LiveOptions,
  streams: LiveStreams = { stdout: process.stdout, stdin: process.stdin },
): Promise<number> {
  const opening = openLiveView(options, streams)
  const outcome = await runWhileConnecting(maskUrl(options.trackerUrl), streams, opening, (view) => view.stop(0))
  if ('exitCode' in outcome) return outcome.exitCode
  return outcome.value.run()
}

/** Connects to the tracker and reads it once. Throws a `CliError` when either fails. */
async function openLiveView(options: LiveOptions, streams: LiveStreams): Promise<LiveView> {
  const connection = await connectTracker(options.trackerUrl, options.keyPrefix, options.apiKey)
  const view = new LiveView(connection, options, streams)
  try {
    await view.open()
  } catch (error) {
    await view.stop(1)
    throw error
  }
  return view
}

class LiveView {
  readonly #connection: TrackerConnection
  readonly #options: LiveOptions
  readonly #stdout: LiveStreams['stdout']
  readonly #screen: TerminalScreen | undefined
  readonly #colour: boolean
  readonly #state: LiveState
  readonly #settings: ViewSettings = createViewSettings()
  /** Decoded records of the last read, so that a resync decodes only what changed. */
  readonly #decodeCache = new DecodeCache()

  #stream: UpdateStream | undefined
  #source: SourceStatus
  /** `LiveState.updatesApplied` when the view was paused, to count the updates since. */
  #updatesBeforePause: number | undefined
  #readError: string | undefined
  /** The latest diagnosis of a Redis Cluster during an outage, cleared by a read that succeeds. */
  #clusterDiagnosis: { text: string | undefined; atMs: number } | undefined
  /** Set once an update has started a read early after a failed one, until a read succeeds. */
  #retriedOnUpdate = false
  #reconnectNotice: { text: string; untilMs: number; colour: 'yellow' | 'red' } | undefined
  /** The last warning a library printed while the screen was up, shown in the footer. */
  #notice: string | undefined
  /** `describeEmptyPrefix` of the latest read, while the view shows no request. */
  #emptyPrefixNotice: string | undefined
  /** `describeWrongTypeHeartbeats` of the latest heartbeat read that found keys of the wrong type. */
  #heartbeatNotice: string | undefined
  /** `describeWrongTypeKeys` of the latest read, for keys such as a `last_cleared_at` of the wrong type. */
  #wrongTypeKeyNotice: string | undefined
  /** Notice that names the failed SUBSCRIBE after which the view polls a tracker that publishes updates. */
  #subscribeNotice: { text: string; untilMs: number } | undefined
  /** Time from which updates may be missing; read back at the first resync after `#subscribedMs`. */
  #gapStartMs: number | undefined
  /**
   * Time the stream was subscribed again after the loss that `#gapStartMs`
   * marks. It is cleared on each loss, so that a read made while the stream
   * is still down does not count as closing the new gap.
   */
  #subscribedMs: number | undefined
  /** Time the stream was last lost. */
  #disconnectedMs: number | undefined
  #lastReadMs: number | undefined
  /** Light reads since the last full one. */
  #lightReads = 0
  /** Set when a light read left records whose content is unknown: the next read is full. */
  #fullReadDue = false

  #frozen: LiveData | undefined
  #frame: Frame | undefined
  #lastLines: string[] | undefined
  #lastPlainFrame = ''
  #framesWritten = 0
  #lastFrameMs = 0
  #frameTimer: NodeJS.Timeout | undefined
  #tickTimer: NodeJS.Timeout | undefined
  #resyncTimer: NodeJS.Timeout | undefined
  /** Start of the tracker read in flight, undefined between reads. */
  #readStartedMs: number | undefined
  /** Start of the first read since the last one that succeeded: the start of an outage, while reads fail. */
  #failingSinceMs: number | undefined
  #resyncPending = false
  #faultAfterFrames: number | undefined

  #restoreConsole: (() => void) | undefined
  #stopped = false
  /** Set by `run()`: no frame is written before it, on a terminal not yet switched to the view's screen. */
  #running = false
  /** Ctrl-Z and SIGTSTP on a terminal (`watchJobControl`), while the exit handlers are installed. */
  #jobControl: JobControl | undefined
  #resolveExit: (code: number) => void = () => {}

  constructor(connection: TrackerConnection, options: LiveOptions, streams: LiveStreams) {
    this.#connection = connection
    this.#options = options
    this.#stdout = streams.stdout
    this.#screen =
      streams.stdout.isTTY === true ? new TerminalScreen(streams.stdout, streams.stdin) : undefined
    this.#colour = this.#screen !== undefined && shouldUseColour(streams.stdout)
    this.#state = new LiveState({
      windowMs: this.#windowSeconds * 1000,
      completedLimit: LIVE_COMPLETED_LIMIT,
      nowMs: Date.now(),
      decodeCache: this.#decodeCache,
      maxRecordBytes: options.maxRecordBytes,
    })
    this.#source = { kind: 'polling', intervalMs: options.refreshRateSeconds * 1000 }
    if (process.env[TEST_FAULT_VARIABLE] === 'render') this.#faultAfterFrames = 1
  }

  get #windowSeconds(): number {
    return this.#options.windowSeconds ?? LIVE_DEFAULTS.windowSeconds
  }

  /**
   * Subscribes, then reads the tracker once. A failed SUBSCRIBE leaves the
   * view polling, with the reason in the status line. Throws a `CliError`
   * when the read fails.
   */
  async open(): Promise<void> {
    try {
      this.#stream = await openUpdateStream(this.#connection.tracker, {
        onUpdate: this.#onUpdate,
        onDisconnect: this.#onDisconnect,
        onSubscribed: this.#onSubscribed,
      })
    } catch (error) {
      const text = describeSubscribeFailure(this.#connection.describeFailure(error))
      this.#subscribeNotice = { text, untilMs: Date.now() + STREAM_NOTICE_MS }
    }
    if (this.#stream !== undefined) this.#source = { kind: 'stream', connected: true }

    this.#state.beginResync()
    let snapshot: TaskSnapshot
    try {
      snapshot = await this.#connection.tracker.read({
        completedLimit: LIVE_COMPLETED_LIMIT,
        decodeCache: this.#decodeCache,
        maxRecordBytes: this.#options.maxRecordBytes,
      })
      this.#state.finishResync(snapshot, Date.now())
      this.#lastReadMs = Date.now()
    } catch (error) {
      this.#state.abortResync()
      throw new CliError(await diagnoseReadFailure(this.#connection, error))
    }
    await this.#noteSnapshot(snapshot)
    await this.#readHeartbeats()
  }

  async run(): Promise<number> {
    const exited = new Promise<number>((resolve) => {
      this.#resolveExit = resolve
    })
    this.#installExitHandlers()
    if (this.#screen !== undefined) {
      this.#screen.enter(this.#onKey)
      this.#restoreConsole = this.#captureConsoleWarnings()
    }
    this.#stdout.on('resize', this.#onResize)
    this.#stdout.on('error', this.#onOutputError)

    this.#running = true
    this.#draw()
    this.#armResync()
    this.#armTick()
    return exited
  }

  readonly #onUpdate = (json: string): void => {
    if (this.#stopped) return
    this.#state.applyUpdate(json, Date.now())
    // An update shows that Redis replies again, as after a pause, so one
    // read runs now rather than leaving the failure on screen until the
    // next refresh. It runs once per failure, because an update does not
    // prove that reads work, and a read that keeps failing must not run on
    // every update.
    if (this.#readError !== undefined && !this.#retriedOnUpdate) {
      this.#retriedOnUpdate = true
      void this.#resync()
    }
    this.#requestFrame()
  }

  readonly #onDisconnect = (reason: string, sinceMs = Date.now()): void => {
    this.#gapStartMs ??= sinceMs
    this.#subscribedMs = undefined
    this.#disconnectedMs = sinceMs
    this.#source = { kind: 'stream', connected: false, sinceMs, reason }
    this.#requestFrame()
  }

  readonly #onSubscribed = (): void => {
    this.#subscribedMs = Date.now()
    this.#source = { kind: 'stream', connected: true }
    void this.#resync()
  }

  /** Asks for a frame; frames closer than the frame interval are merged into one. */
  #requestFrame(): void {
    if (this.#stopped || this.#frameTimer !== undefined) return
    // Without a terminal a frame is printed once a second (`#armTick`), not per update.
    if (this.#screen === undefined) return
    const wait = Math.max(0, this.#lastFrameMs + MIN_FRAME_INTERVAL_MS - Date.now())
    this.#frameTimer = setTimeout(this.#onFrameTimer, wait)
  }

  readonly #onFrameTimer = (): void => {
    this.#frameTimer = undefined
    this.#draw()
  }

  #armTick(): void {
    this.#tickTimer = setTimeout(() => {
      this.#draw()
      this.#armTick()
    }, TICK_INTERVAL_MS)
  }

  #armResync(): void {
    clearTimeout(this.#resyncTimer)
    this.#resyncTimer = setTimeout(() => void this.#resync(), this.#options.refreshRateSeconds * 1000)
  }

  /** Reads the whole tracker and the heartbeats, then draws. Merges calls made during a read. */
  async #resync(): Promise<void> {
    if (this.#stopped) return
    if (this.#readStartedMs !== undefined) {
      this.#resyncPending = true
      return
    }
    const readStartedMs = Date.now()
    this.#readStartedMs = readStartedMs
    this.#failingSinceMs ??= readStartedMs
    // Only a read that starts after the stream is back can close a gap: an
    // update published between an earlier read and the new subscription is
    // in neither.
    const subscribedMs = this.#subscribedMs
    const closesGap = this.#gapStartMs !== undefined && subscribedMs !== undefined && subscribedMs <= readStartedMs
    let gapStartMs: number | undefined
    if (this.#source.kind === 'polling') gapStartMs = this.#lastReadMs
    else if (closesGap) gapStartMs = this.#gapStartMs
    this.#state.beginResync()
    try {
      const readOptions = {
        ...resyncReadOptions(this.#mayReadChangedOnly(closesGap), this.#decodeCache, this.#lightReads),
        maxRecordBytes: this.#options.maxRecordBytes,
      }
      const snapshot = await this.#connection.tracker.read(readOptions)
      const polling = this.#source.kind === 'polling'
      const readCompleted = (readOptions.completedLimit ?? 0) > 0
      const result = this.#state.finishResync(snapshot, Date.now(), gapStartMs, polling, readCompleted)
      this.#lightReads = snapshot.reused === undefined ? 0 : this.#lightReads + 1
      this.#fullReadDue = result.unverified > 0
      if (closesGap && gapStartMs !== undefined && subscribedMs !== undefined) {
        this.#noteReconnection(subscribedMs - gapStartMs, result)
        // A loss during the read opened a new gap. This read covers the
        // time up to its start and the stream the time up to that loss, so
        // the new gap starts at the loss.
        this.#gapStartMs = this.#subscribedMs === subscribedMs ? undefined : this.#disconnectedMs
      }
      await this.#noteSnapshot(snapshot)
      this.#readError = undefined
      this.#clusterDiagnosis = undefined
      this.#failingSinceMs = undefined
      this.#retriedOnUpdate = false
      this.#lastReadMs = readStartedMs
    } catch (error) {
      this.#state.abortResync()
      this.#readError = await this.#describeReadFailure(error)
    } finally {
      this.#readStartedMs = undefined
    }
    // After a failed read, a heartbeat read would most likely wait for its
    // own timeout too, and hold back the next read.
    if (this.#readError === undefined) await this.#readHeartbeats()
    if (this.#stopped) return

    // Without a terminal, the next tick prints the frame, so that one goes out a second.
    if (this.#screen !== undefined) this.#draw()
    this.#armResync()
    if (this.#resyncPending) {
      this.#resyncPending = false
      void this.#resync()
    }
  }

  /**
   * Returns whether the next resync may fetch only the changed active
   * records. That needs every update since the last read: the stream
   * connected, with no gap to close, and no record left unverified by
   * the previous light read.
   */
  #mayReadChangedOnly(closesGap: boolean): boolean {
    if (this.#source.kind !== 'stream' || !this.#source.connected) return false
    return !closesGap && this.#gapStartMs === undefined && !this.#fullReadDue
  }

  /**
   * Sets the notices that a read's snapshot gives: no app records under the
   * key prefix, and keys of the wrong type. The first frame needs them too,
   * so the first read sets them as every resync does.
   */
  async #noteSnapshot(snapshot: TaskSnapshot): Promise<void> {
    this.#emptyPrefixNotice = this.#isEmpty()
      ? await describeEmptyPrefix(this.#connection, snapshot, this.#options.keyPrefix)
      : undefined
    this.#wrongTypeKeyNotice = describeWrongTypeKeys(snapshot.wrongTypeKeys)
  }

  /** Reads the heartbeats. A failed read keeps the last ones and is not shown, because heartbeats are optional. */
  async #readHeartbeats(): Promise<void> {
    const heartbeats = await readHeartbeatState(this.#connection)
    if (heartbeats === undefined) return
    const { live, stalePrefixes, wrongTypeKeys } = heartbeats
    this.#state.heartbeats = { live, stalePrefixes }
    this.#heartbeatNotice = wrongTypeKeys.length > 0 ? describeWrongTypeHeartbeats(wrongTypeKeys) : undefined
  }

  #noteReconnection(gapMs: number, result: { recovered: number; missing: { fromMs: number; toMs: number } | undefined }): void {
    const gap = formatDuration(Math.max(0, gapMs)) ?? '?'
    let text = `Reconnected after a gap of ${gap}; ${countOf(result.recovered, 'completed request')} read back from past_tasks`
    if (result.missing !== undefined) {
      const missing = formatDuration(result.missing.toMs - result.missing.fromMs) ?? '?'
      text += `; requests of ${missing} of the gap may be missing (past_tasks keeps only the newest)`
    }
    const colour = result.missing === undefined ? 'yellow' : 'red'
    this.#reconnectNotice = { text, untilMs: Date.now() + STREAM_NOTICE_MS, colour }
  }

  /** Renders the state (or the frozen data while paused) and writes what changed on screen. */
  #draw(): void {
    if (this.#stopped || !this.#running || this.#jobControl?.suspended === true) return
    if (this.#faultAfterFrames !== undefined && this.#framesWritten >= this.#faultAfterFrames) {
      throw new Error(`deliberate fault in the render loop (${TEST_FAULT_VARIABLE}=render)`)
    }
    const nowMs = Date.now()
    this.#lastFrameMs = nowMs
    const size = this.#screen?.size() ?? { width: Infinity, height: Infinity }
    const data = this.#settings.paused
      ? (this.#frozen ??= captureLiveData(this.#state, nowMs))
      : captureLiveData(this.#state, nowMs)
    if (!this.#settings.paused) {
      this.#frozen = undefined
      followDetail(this.#settings, (taskKey) => this.#state.findLatestTask(taskKey))
    }

    this.#frame = renderLiveFrame({
      data,
      settings: this.#settings,
      source: this.#source,
      trackerUrl: this.#connection.displayUrl,
      width: size.width,
      height: size.height,
      activeColumns: this.#options.activeColumns,
      completedColumns: this.#options.completedColumns,
      completedLimit: LIVE_COMPLETED_LIMIT,
      thresholds: {
        slowAfterMs: (this.#options.slowAfterSeconds ?? LIVE_DEFAULTS.slowAfterSeconds) * 1000,
        stallAfterMs: (this.#options.stallAfterSeconds ?? LIVE_DEFAULTS.stallAfterSeconds) * 1000,
      },
      colour: this.#colour,
      interactive: this.#screen !== undefined,
      notices: this.#collectNotices(nowMs),
    })
    const { lines } = this.#frame

    if (this.#screen === undefined) {
      this.#writePlainFrame(lines.join('\n'))
      return
    }
    const update = composeScreenUpdate(this.#lastLines, lines, size.height)
    this.#lastLines = lines
    if (update === '') return
    this.#stdout.write(update)
    this.#framesWritten++
  }

  /**
   * Returns the pause notice: the updates that arrived since the pause, on a
   * stream. A polled tracker (http, memory) sends no updates, so its reads
   * go on unseen and nothing is counted.
   */
  #describePause(): string {
    if (this.#source.kind === 'polling') return 'PAUSED: the table is frozen while reads go on; p resumes'
    this.#updatesBeforePause ??= this.#state.updatesApplied
    return `PAUSED: ${countOf(this.#state.updatesApplied - this.#updatesBeforePause, 'update')} since the pause; p resumes`
  }

  #collectNotices(nowMs: number): StyledLine[] {
    const notices: StyledLine[] = []
    if (this.#settings.paused) notices.push({ text: this.#describePause(), colour: 'yellow' })
    else this.#updatesBeforePause = undefined
    // A paused or overloaded Redis sends nothing on the update stream
    // either, so the table would look current while its durations grow.
    // Each read times out and the next one starts, so both notices count
    // from the first read that failed.
    const outage = formatDuration(nowMs - (this.#failingSinceMs ?? this.#readStartedMs ?? nowMs)) ?? '?'
    const waitedMs = this.#readStartedMs === undefined ? 0 : nowMs - this.#readStartedMs
    if (this.#readError !== undefined) {
      notices.push({ text: `Reads failing for ${outage}, showing the last data: ${this.#readError}`, colour: 'red' })
    } else if (waitedMs >= SLOW_READ_NOTICE_MS) {
      notices.push({ text: `No reply to a read for ${outage}; showing the data of the last read`, colour: 'yellow' })
    }
    const source = this.#source
    const streamLost = source.kind === 'stream' && !source.connected
    if (source.kind === 'stream' && !source.connected) {
      notices.push({ text: `Update stream lost: ${source.reason}; reconnecting`, colour: 'red' })
    }
    // A new problem replaces the news of the last reconnection, which would
    // read as if everything were fine again.
    const troubled = streamLost || this.#readError !== undefined || waitedMs >= SLOW_READ_NOTICE_MS
    if (!troubled && this.#reconnectNotice !== undefined && this.#reconnectNotice.untilMs > nowMs) {
      notices.push({ text: this.#reconnectNotice.text, colour: this.#reconnectNotice.colour })
    }
    if (this.#subscribeNotice !== undefined && this.#subscribeNotice.untilMs > nowMs) {
      notices.push({ text: this.#subscribeNotice.text, colour: 'yellow' })
    }
    if (this.#notice !== undefined) notices.push({ text: this.#notice, colour: 'yellow' })
    if (this.#emptyPrefixNotice !== undefined) notices.push({ text: this.#emptyPrefixNotice, colour: 'yellow' })
    if (this.#heartbeatNotice !== undefined) notices.push({ text: this.#heartbeatNotice, colour: 'yellow' })
    if (this.#wrongTypeKeyNotice !== undefined) notices.push({ text: this.#wrongTypeKeyNotice, colour: 'yellow' })
    return notices
  }

  /**
   * Describes a failed read for the status line. On a Redis Cluster, the
   * cluster's diagnosis names the node or the slot at fault in place of the
   * client's error, such as a redirection to a node that is down.
   */
  async #describeReadFailure(error: unknown): Promise<string> {
    const diagnose = this.#connection.diagnose
    if (diagnose === undefined) return this.#connection.describeFailure(error)
    const nowMs = Date.now()
    if (this.#clusterDiagnosis === undefined || nowMs - this.#clusterDiagnosis.atMs >= CLUSTER_DIAGNOSIS_INTERVAL_MS) {
      this.#clusterDiagnosis = { text: await diagnose(), atMs: nowMs }
    }
    return this.#clusterDiagnosis.text ?? this.#connection.describeFailure(error)
  }

  /** Returns true when the view shows no request at all, as under a mistyped --prefix. */
  #isEmpty(): boolean {
    return this.#state.active.size === 0 && this.#state.completed.length === 0
  }

  /** Writes a frame as plain text, separated from the previous one by a blank line. */
  #writePlainFrame(text: string): void {
    if (text === this.#lastPlainFrame) return
    this.#lastPlainFrame = text
    this.#stdout.write(`${this.#framesWritten === 0 ? '' : '\n'}${text}\n`)
    this.#framesWritten++
  }

  readonly #onKey = (key: string): void => {
    const frame = this.#frame
    const result = handleKey(this.#settings, key, {
      // A getter, so that only the keys that move the selection sort every row.
      get rowKeys() {
        return frame?.listRowKeys() ?? []
      },
      findTask: (rowKey) => frame?.findTask(rowKey),
      // A getter too, so that only `s` looks for columns without a value.
      get sortColumns() {
        return frame?.listSortColumns() ?? []
      },
      pageSize: frame?.pageSize ?? 10,
    })
    if (result === 'quit') void this.stop(0)
    else if (result === 'suspend') this.#jobControl?.suspend()
    else if (result === 'changed') this.#draw()
  }

  readonly #onResize = (): void => {
    this.#lastLines = undefined
    this.#draw()
  }

  readonly #onSignal = (signal: ExitSignal): void => {
    exitOnHangup(signal)
    void this.stop(exitCodeOfSignal(signal, this.#screen !== undefined))
  }

  /** `web-top-cli live | head` closes the pipe: that ends the view, and is not an error. */
  readonly #onOutputError = (error: Error & { code?: string }): void => {
    if (error.code === 'EPIPE') {
      void this.stop(0)
      return
    }
    this.#onFatalError(error)
  }

  readonly #onFatalError = (error: unknown): void => {
    this.#restoreTerminal()
    messageStream.write(`web-top-cli: live view failed: ${describeError(error)}\n`)
    exitProcess(1)
  }

  readonly #restoreTerminal = (): void => {
    this.#restoreConsole?.()
    this.#restoreConsole = undefined
    this.#screen?.restore()
  }

  /**
   * Routes `console.warn` and `console.error` to the footer while the screen
   * is up: ioredis prints some warnings there (a password the server does
   * not need), and text written over the view would garble it.
   */
  #captureConsoleWarnings(): () => void {
    const { warn, error } = console
    const show = (...args: unknown[]) => {
      this.#notice = args.map((arg) => (arg instanceof Error ? arg.message : String(arg))).join(' ')
      this.#requestFrame()
    }
    console.warn = show
    console.error = show
    return () => {
      console.warn = warn
      console.error = error
    }
  }

  #installExitHandlers(): void {
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as ExitSignal[]) {
      process.on(signal, this.#onSignal)
    }
    process.on('uncaughtException', this.#onFatalError)
    process.on('unhandledRejection', this.#onFatalError)
    process.on('exit', this.#restoreTerminal)
    if (this.#screen !== undefined) {
      this.#jobControl = watchJobControl(this.#screen, this.#onKey, () => {
        this.#lastLines = undefined
        this.#draw()
      })
    }
  }

  #removeExitHandlers(): void {
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as ExitSignal[]) {
      process.off(signal, this.#onSignal)
    }
    process.off('uncaughtException', this.#onFatalError)
    process.off('unhandledRejection', this.#onFatalError)
    process.off('exit', this.#restoreTerminal)
    this.#jobControl?.remove()
    this.#jobControl = undefined
  }

  /** Restores the terminal first, then closes the subscription and the connection. */
  async stop(code: number): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#frameTimer)
    clearTimeout(this.#tickTimer)
    clearTimeout(this.#resyncTimer)
    this.#stdout.off('resize', this.#onResize)
    this.#restoreTerminal()
    this.#removeExitHandlers()

    try {
      await this.#stream?.close()
      await this.#connection.close()
    } catch {
      // The view is closing; a connection that fails to close changes nothing for the user.
    }
    this.#resolveExit(code)
  }
}

/**
 * Returns the status notice of a SUBSCRIBE that failed with `reason`, after
 * which the view polls. Redis replies NOPERM to a user whose ACL lacks
 * SUBSCRIBE or the `task_updates` channel.
 */
export function describeSubscribeFailure(reason: string): string {
  if (!reason.includes('NOPERM')) return `No update stream: SUBSCRIBE failed: ${reason}`
  return (
    `No update stream: Redis rejected SUBSCRIBE for this user: ${reason}. Let the user run SUBSCRIBE on the ` +
    'task_updates channel of the prefix, as README.md lists under "Redis users (ACL)"'
  )
}

/**
 * Builds the data of one frame from the view's state: the active tasks
 * with their orphan marks, the orphan counts per process, and the hosts and
 * processes seen in the tasks, the window's figures and the heartbeats.
 */
export function captureLiveData(state: LiveState, nowMs: number): LiveData {
  const orphansByPrefix = new Map<string, number>()
  const { stalePrefixes } = state.heartbeats
  const hosts = new Set(state.stats.hosts(nowMs))
  const processes = new Set(state.stats.processes(nowMs))
  // One pass over what may be 10,000 tasks, on every frame.
  const active: ActiveItem[] = []
  for (const entry of state.active.values()) {
    const orphaned = stalePrefixes.length > 0 && state.isOrphaned(entry)
    if (orphaned && entry.processorId !== undefined) {
      const prefix = stalePrefixes.find((each) => entry.processorId?.startsWith(each))
      if (prefix !== undefined) orphansByPrefix.set(prefix, (orphansByPrefix.get(prefix) ?? 0) + 1)
    }
    const { task } = entry
    const facts = readRecordFacts(task)
    active.push({ task, orphaned, facts })
    if (task.host_name != null) hosts.add(task.host_name)
    if (facts.processName !== undefined) processes.add(facts.processName)
  }
  for (const heartbeat of state.heartbeats.live) {
    if (heartbeat.host_name != null) hosts.add(heartbeat.host_name)
    processes.add(describeHeartbeatProcess(heartbeat))
  }
  return {
    nowMs,
    active,
    completed: [...state.completed],
    figures: state.stats.figures(nowMs),
    routes: state.stats.routeFigures(nowMs),
    routeOfPath: (methodPath) => state.stats.routeOfPath(methodPath),
    hosts: hosts.size,
    processes: processes.size,
    heartbeats: state.heartbeats,
    orphansByPrefix,
    lastUpdateMs: state.lastUpdateMs,
    skipped: state.skipped,
    skipReasons: state.skipReasons,
    skippedUpdates: state.skippedUpdates,
    updateSkipReasons: state.updateSkipReasons,
  }
}
