/**
 * The framework-neutral recorder: starts a task when a request arrives,
 * ends it exactly once when the response finishes or the connection
 * closes, and hands both records to a tracker. The adapters only translate
 * framework hooks into calls of `track()`.
 *
 * A recorder also refreshes a heartbeat, ends the entries an earlier
 * process with the same host, pid and thread left behind, and ends its
 * own entries when it closes: on `close()`, on SIGTERM or SIGINT when the
 * app does not handle them (signals.ts), and, as "idle", when every HTTP
 * server it was watching has closed. Ended by cleanup, such an entry
 * becomes a completed task with `recorded_successfully: false`
 * (task/cleanup-end.ts).
 */
import cluster from 'node:cluster'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import { resolveOptions, SMALL_MAX_PENDING_BYTES, type ResolvedOptions, type TopOptions } from '../options'
import type { RequestFacts } from '../task/capture'
import { createRedactionRules } from '../task/redact'
import { formatIsoTime, nowFromOriginMs, nowMs, readClockOriginMs } from '../task/time'
import type { Tracker } from '../trackers/tracker'
import { describePathForLog } from '../util/log-path'
import { createConsoleLogger, createRateLimitedLogger, guardLogger, type Logger } from '../util/logger'
import { maskUrl } from '../util/mask-url'
import { getProcessShared } from '../util/process-shared'
import { HeartbeatSender } from './heartbeat-sender'
import { RecorderLifecycle, type WatchedServer } from './lifecycle'
import { openTracker } from './open-tracker'
import { addRecordingTracker, removeRecordingTracker } from './recording-trackers'
import {
  defaultProcessorName,
  defaultTags,
  processorIdPrefix,
  readProcessFacts,
  SlotPool,
} from './process-facts'
import {
  detachState,
  discardRecording,
  endClosedNow,
  endIfConnectionClosed,
  finishTask,
  getRequestState,
  isHeadWritten,
  isHeadWrittenBeforeCut,
  markUnrecorded,
  watchResponse,
  type RequestOutcome,
  type RequestState,
} from './request-end'
import { TaskFields } from './task-fields'

export type { RequestOutcome, WatchedServer }
export { discardRecording }

/** Request details that an adapter passes besides `req` and `res`. */
export interface TrackContext extends RequestFacts {
  /**
   * Route pattern, when the framework has matched it at the start
   * (Fastify). Another value than a string, such as a RegExp, is stored as
   * `String(value)`, or null when that throws.
   */
  taskName?: string | null | undefined
  /**
   * Reads the route pattern when the request ends (Express resolves it
   * while routing). Its result is stored as `taskName` is. When it returns
   * null or undefined, or throws, the task keeps `taskName`.
   */
  resolveTaskName?: ((req: IncomingMessage) => string | null | undefined) | undefined
}

/**
 * Logged by a recorder on the memory tracker in a `node:cluster` worker,
 * as under PM2's cluster mode: each worker keeps its own records, and a
 * reader gets those of the worker that handles its request.
 */
const MEMORY_TRACKER_IN_WORKER =
  'web-top records to the memory tracker of this cluster worker, which holds only its own requests; ' +
  'a reader sees the requests of whichever worker handles its read. Record to Redis to see every worker'

/**
 * Recorders created in this process, by every copy of the package, so
 * that each one's processor ids have their own prefix.
 */
const recorders = getProcessShared('recorders', () => ({ created: 0 }))

/**
 * Recorders of this process, by every copy of the package, that have not
 * closed, each as a probe of whether it is awake, and whether
 * `TOO_MANY_RECORDERS` was logged.
 */
const openRecorders = getProcessShared('open-recorders', () => ({
  recorders: new Set<{ readonly isAwake: () => boolean }>(),
  warned: false,
}))

/**
 * Number of awake recorders past which the process logs `TOO_MANY_RECORDERS`.
 * An app needs one recorder, and a process that serves several apps or
 * servers a few. A recorder made per request, as by
 * `app.use((req, res, next) => topMiddleware()(req, res, next))`, stays awake
 * with its own tracker and heartbeat until its server closes, so such an app
 * passes this number within its first 33 requests. Idle recorders, whose
 * servers closed or never listened, as in a test suite that builds an app
 * per test, do not count.
 */
export const MAX_AWAKE_RECORDERS = 32

const TOO_MANY_RECORDERS =
  `web-top has more than ${MAX_AWAKE_RECORDERS} recorders awake in this process, each with its own tracker ` +
  'and heartbeat: create the middleware or plugin once per app, at setup, as in app.use(topMiddleware()), ' +
  'not inside a request handler. Close a recorder that is no longer used with close() ' +
  '(await app.close() for the Fastify plugin)'

const SMALL_PENDING_BUDGET =
  `maxPendingBytes is below ${SMALL_MAX_PENDING_BYTES} bytes, which holds only a few task records of about 1 KB: ` +
  'records past it are dropped even while Redis is healthy when several requests end close together. ' +
  'Raise it, or leave it unset for 8 MiB'

/** How often the recorder looks for requests whose connection closed unnoticed (`#sweepClosedConnections`). */
const CLOSED_CONNECTION_SWEEP_MS = 1_000

export class Recorder {
  readonly tracker: Tracker
  readonly options: ResolvedOptions
  readonly logger: Logger

  readonly #fields: TaskFields
  /** Whether the tracker takes records as fixed and start or end fields (`recordStartFields()`). */
  readonly #writesFields: boolean
  /** Share of requests whose completed record is kept; 1 keeps all. */
  readonly #sampleRate: number
  /** `<host>/<pid>-<thread id>-`, shared by every recorder of this process. */
  readonly #processIdPrefix: string
  /** `<recorder number>.`, the part of `process_internal_id` before the slot. */
  readonly #internalIdPrefix: string
  readonly #slots = new SlotPool()
  /** Processor id of each slot, made once so that the tracker's maps hash it once. */
  readonly #processorIds: string[] = []
  /** The response of each slot's request in flight, for `#endRequestsOfClosedConnections()`. */
  readonly #responses: Array<ServerResponse | undefined> = []
  readonly #lifecycle: RecorderLifecycle
  #inFlight = 0
  #completed = 0
  /**
   * True from the constructor to the first `close()`: the tracker
   * endpoint's default counts this recorder's tracker, and `openRecorders`
   * counts the recorder.
   */
  #countedAsRecording = true
  /** Whether this recorder is awake, for the process's count of awake recorders (`countAwakeRecorders`). */
  readonly #awakeProbe = { isAwake: (): boolean => this.#lifecycle.state === 'open' }
  /** The options as given, compared with those of another recorder that tracks a request first. */
  readonly #givenOptions: TopOptions
  /** Recorders whose options were compared with this one's in `#noteEarlierRecorder()`. */
  readonly #comparedRecorders = new WeakSet<object>()
  /** Runs `#sweepClosedConnections` every `CLOSED_CONNECTION_SWEEP_MS` until `close()`. */
  readonly #sweepTimer: NodeJS.Timeout

  constructor(options: TopOptions = {}) {
    this.options = resolveOptions(options)
    this.#givenOptions = options
    const appLogger = guardLogger(this.options.logger ?? createConsoleLogger())
    // Rate-limited even for the app's own logger, so that a failure repeated
    // on every request logs at most once per 30 s.
    this.logger = createRateLimitedLogger(appLogger)
    for (const { name, suggestion } of this.options.unknownOptions) {
      const hint = suggestion === undefined ? 'check the spelling against the README' : `did you mean \`${suggestion}\`?`
      appLogger.warn({ option: name }, `unknown option \`${name}\` ignored: ${hint}`)
    }
    const { maxPendingBytes } = this.options
    if (maxPendingBytes !== undefined && maxPendingBytes < SMALL_MAX_PENDING_BYTES) {
      appLogger.warn({ maxPendingBytes }, SMALL_PENDING_BUDGET)
    }
    const { tracker, owned } = openTracker(this.options, appLogger)
    this.tracker = tracker
    addRecordingTracker(tracker)
    if (owned && tracker.kind === 'redis' && !this.options.redis) this.#logDestination(appLogger)
    if (tracker.kind === 'memory' && cluster.isWorker) {
      appLogger.warn({ workerId: cluster.worker?.id }, MEMORY_TRACKER_IN_WORKER)
    }

    const facts = readProcessFacts()
    this.#processIdPrefix = processorIdPrefix(facts)
    this.#internalIdPrefix = `${++recorders.created}.`
    this.#fields = new TaskFields({
      capture: {
        captureHeaders: this.options.captureHeaders,
        rules: createRedactionRules(this.options.redaction),
        limits: this.options.limits,
      },
      process: { ...facts, processor_name: this.options.processorName ?? defaultProcessorName(facts) },
      tags: { ...defaultTags(), ...this.options.tags },
      internalIdPrefix: this.#internalIdPrefix,
    })
    this.#writesFields =
      typeof tracker.recordStartFields === 'function' && typeof tracker.recordEndFields === 'function'
    // Sampling needs a tracker that can store a start unpublished and drop it without a record.
    const canSample = this.#writesFields && typeof tracker.recordDiscard === 'function'
    this.#sampleRate = canSample ? this.options.completedSampleRate : 1

    // An earlier process with the same host, pid and thread id (a restart
    // that got the pid back) may have left entries under this prefix. They
    // are ended before this recorder's first write.
    this.tracker.queueRemoveProcessors?.(this.processorIdPrefix, 'process_stopped')

    const heartbeat = new HeartbeatSender(
      this.tracker,
      this.options.heartbeatTtlMs,
      {
        processor_id_prefix: this.processorIdPrefix,
        host_name: facts.host_name,
        process_id: facts.process_id,
        thread_id: facts.thread_id,
        processor_name: this.options.processorName ?? defaultProcessorName(facts),
        started_at: formatIsoTime(nowMs()),
      },
      () => ({ inFlight: this.#inFlight, completed: this.#completed }),
      this.logger,
    )
    this.#lifecycle = new RecorderLifecycle({
      tracker: this.tracker,
      ownsTracker: owned,
      processorIdPrefix: this.processorIdPrefix,
      heartbeat,
      logger: this.logger,
      handleSignals: this.options.handleSignals,
      countInFlight: () => this.#inFlight,
      endRequestsOfClosedConnections: () => this.#endRequestsOfClosedConnections(),
    })
    this.#sweepTimer = setInterval(this.#sweepClosedConnections, CLOSED_CONNECTION_SWEEP_MS)
    this.#sweepTimer.unref()
    countAwakeRecorders(this.#awakeProbe, appLogger)
  }

  /**
   * Start of every processor id this recorder writes:
   * `<host>/<pid>-<thread id>-<recorder number>.`. It ends with `.`, so the
   * prefix of recorder 1 is not a prefix of recorder 10's ids.
   */
  get processorIdPrefix(): string {
    return this.#processIdPrefix + this.#internalIdPrefix
  }

  /**
   * Starts recording a request and ends the task when the response
   * finishes or its connection closes, whichever comes first. A response
   * that closed unfinished, as when the client left while code mounted
   * before web-top ran, is recorded as a task that starts and ends now.
   * Returns whether this call recorded a task: false for an ignored path, a
   * request already tracked, a response that was ended and has closed (a
   * call made too late), a closed recorder or a failure. Never throws: a
   * failure to record is logged and the request goes on untouched.
   */
  track(req: IncomingMessage, res: ServerResponse, context: TrackContext = {}): boolean {
    if (this.#lifecycle.state !== 'open' && !this.#lifecycle.wake()) return false
    const earlier = getRequestState(res)
    if (earlier !== undefined) {
      if (earlier.recorder !== this) this.#noteEarlierRecorder(earlier.recorder)
      return false
    }
    const closed = hasClosed(res)
    if (closed && res.writableEnded) return false

    try {
      if (this.options.isIgnored(req, context.url ?? req.url)) return false
      this.#start(req, res, context)
      // Its `close` event has passed, so nothing else would end it.
      if (closed) endClosedNow(res)
      return true
    } catch (err) {
      this.logger.error({ err, method: req.method, path: describePathForLog(req.url) }, 'web-top failed to record a request')
      return false
    }
  }

  /**
   * Records a request whose response has already been sent, as a task that
   * starts and ends now, so its duration is 0. For responses that a
   * framework sends without running the adapter's hook, such as Fastify's
   * 400 for a URL it cannot decode. Returns whether a task was recorded:
   * false in the cases where `track()` returns false. `context` is
   * `track()`'s, such as the URL as sent. Like `track()` and `end()`,
   * which catch and log their errors, it never throws.
   */
  recordEnded(
    req: IncomingMessage,
    res: ServerResponse,
    outcome: RequestOutcome = 'completed',
    context: TrackContext = {},
  ): boolean {
    if (!this.track(req, res, context)) return false
    this.end(res, outcome)
    return true
  }

  /** Ends a tracked request now, before its response finishes (for frameworks that know better). */
  end(res: ServerResponse, outcome: RequestOutcome): void {
    const state = getRequestState(res)
    if (state === undefined) return
    // Without state, the response would be recorded again when it finishes
    // on a server passed to `watchUntrackedResponses()`.
    markUnrecorded(res)
    finishTask(res, state, outcome)
  }

  /**
   * Stops recording a request without recording it: its active entry is
   * removed (exactly its processor id) and no completed task is written.
   * For requests such as the tracker endpoint's own, when the recorder saw
   * them first. Returns false when the request is not tracked by this
   * recorder, or when the tracker cannot discard (then the request is
   * recorded as usual).
   */
  discard(res: ServerResponse): boolean {
    const state = getRequestState(res)
    if (state === undefined || state.recorder !== this || this.tracker.recordDiscard === undefined) {
      return false
    }

    detachState(res, state)
    markUnrecorded(res)
    try {
      this.tracker.recordDiscard(state.processorId)
    } finally {
      this.#releaseSlot(state)
    }
    return true
  }

  /**
   * Watches an HTTP server that requests come from, and wakes an idle
   * recorder when the server is new to it. When every watched server has
   * closed, the recorder goes idle: it removes its entries and heartbeat
   * and closes the connection it opened, so that the process can exit. The
   * next request wakes it up. A server watched before and closed since is
   * watched again. The Express middleware calls this with
   * `req.socket.server` on each request, because Express has no close hook,
   * and the Fastify plugin with `fastify.server` once it listens.
   */
  watchServer(server: WatchedServer | null | undefined): void {
    this.#lifecycle.watchServer(server)
  }

  /**
   * Leaves the recorder idle until its first request or its first watched
   * server (see `watchServer()`), for adapters that learn of their servers
   * from requests, and for the Fastify plugin until its app listens.
   * @internal
   */
  idleUntilFirstRequest(): void {
    this.#lifecycle.idleUntilFirstRequest()
  }

  /**
   * Has the cleanup after a signal (`handleSignals`) stop `server` from
   * accepting connections, as it does with the servers of `watchServer()`.
   * The Fastify plugin calls this with the app's server.
   * @internal
   */
  closeServerOnSignal(server: WatchedServer): void {
    this.#lifecycle.closeOnSignal(server)
  }

  /**
   * Stops recording, ends the active entries of this recorder by cleanup,
   * removes its heartbeat and closes the tracker if the recorder opened it.
   * When Redis does not reply, gives up after about 2 s. A request still in
   * flight is recorded as ended at the close, with `recorded_successfully:
   * false` and the tag `web_top.outcome: recorder_closed`, and its own end
   * is not written. Other recorders of the same process keep their entries.
   */
  close(): Promise<void> {
    clearInterval(this.#sweepTimer)
    if (this.#countedAsRecording) {
      removeRecordingTracker(this.tracker)
      openRecorders.recorders.delete(this.#awakeProbe)
    }
    this.#countedAsRecording = false
    return this.#lifecycle.close()
  }

  /**
   * Logs once where the records go, so that an app that meant to set a
   * tracker URL and did not sees that it records to the default one.
   */
  #logDestination(logger: Logger): void {
    const { trackerUrl, trackerUrlSource, keyPrefix } = this.options
    const url = typeof trackerUrl === 'string' ? maskUrl(trackerUrl) : trackerUrl.map(maskUrl).join(',')
    logger.info?.(keyPrefix === '' ? {} : { keyPrefix }, `web-top records to ${url} (${URL_SOURCES[trackerUrlSource]})`)
  }

  /**
   * Warns, once per recorder, that a request reached this recorder after
   * `earlier`, a recorder with other options, had started recording it.
   * The first recorder alone records a request, so this one's options,
   * such as its key prefix or tags, do not apply to it. Runs only for
   * requests tracked already, so a correct mount never pays for it.
   */
  #noteEarlierRecorder(earlier: object): void {
    if (this.#comparedRecorders.has(earlier)) return
    this.#comparedRecorders.add(earlier)
    if (!(earlier instanceof Recorder)) return
    const option = findDifferentOption(earlier.#givenOptions, this.#givenOptions)
    if (option === undefined) return

    this.logger.warn(
      { option, keyPrefix: this.options.keyPrefix, earlierKeyPrefix: earlier.options.keyPrefix },
      'web-top did not record a request with the options of this middleware, because a middleware mounted ' +
        'before it records the request already, with other options: the first web-top middleware that a ' +
        'request passes records it. Mount one topMiddleware() and give it all the options, or give each ' +
        'router its own app and server',
    )
  }

  #releaseSlot(state: RequestState): void {
    this.#responses[state.slot] = undefined
    this.#slots.release(state.slot)
    if (--this.#inFlight === 0) this.#lifecycle.onLastRequestEnd()
  }

  /**
   * Ends the requests whose connection closed without a `close` event of
   * their response: the app detached the socket (`res.detachSocket()`, as
   * tunnel code does) or removed the response's `close` listeners. Their
   * end time is that of the sweep, up to `CLOSED_CONNECTION_SWEEP_MS` late.
   */
  readonly #sweepClosedConnections = (): void => {
    if (this.#inFlight > 0) this.#endRequestsOfClosedConnections()
  }

  #endRequestsOfClosedConnections(): void {
    for (const res of this.#responses) {
      if (res !== undefined) endIfConnectionClosed(res)
    }
  }

  #start(req: IncomingMessage, res: ServerResponse, context: TrackContext): void {
    const startedAt = formatIsoTime(nowMs())
    const clockOriginMs = readClockOriginMs()
    const facts = this.#resolveProxyFacts(req, context)
    const requestFields = this.#fields.request(req, facts)
    const taskName = context.taskName ?? null
    // Encoded before the response is watched, so that a failure here leaves no task to end.
    const startFields = this.#fields.start(taskName, startedAt)

    const slot = this.#slots.acquire()
    const state: RequestState = {
      recorder: this,
      req,
      slot,
      processorId: this.#processorIds[slot] ?? this.#learnSlot(slot),
      fixedFields: this.#fields.fixed(slot, startedAt, requestFields),
      clockOriginMs,
      taskName,
      resolveTaskName: context.resolveTaskName,
      clientIpSource: facts.clientIp === undefined ? 'socket' : 'proxy',
      sampled: this.#sampleRate >= 1 || Math.random() < this.#sampleRate,
      queuedOn: null,
    }
    this.#inFlight++
    this.#responses[slot] = res
    watchResponse(res, state)

    const sharedFields = this.#fields.startShared(state.clientIpSource, state.sampled)
    if (this.#writesFields) {
      const { processorId, fixedFields, sampled } = state
      this.tracker.recordStartFields?.(processorId, fixedFields, startFields, sharedFields, sampled)
    } else {
      this.tracker.recordStart(state.processorId, `{${state.fixedFields},${startFields}${sharedFields}}`)
    }
  }

  #learnSlot(slot: number): string {
    const processorId = this.#processIdPrefix + this.#internalIdPrefix + slot
    this.#processorIds[slot] = processorId
    return processorId
  }

  /**
   * Builds the end record and hands it to the tracker, then frees the
   * request's slot. Called once per request. After `close()` the record is
   * not written, because `close()` already removed the active entry.
   * @internal
   */
  writeEnd(res: ServerResponse, state: RequestState, outcome: RequestOutcome): void {
    try {
      if (this.#lifecycle.state !== 'closed') this.#writeEnd(res, state, outcome)
      this.#completed++
    } finally {
      this.#releaseSlot(state)
    }
  }

  #writeEnd(res: ServerResponse, state: RequestState, outcome: RequestOutcome): void {
    if (!state.sampled) {
      // Left out by sampling: only the active entry goes, and no end is published.
      this.tracker.recordDiscard?.(state.processorId)
      return
    }

    // Counted from the start's clock origin, so that a wall clock step during the request stays out of its duration.
    const endedAt = formatIsoTime(nowFromOriginMs(state.clockOriginMs))
    const unsent = isUnsent(res, state.req, outcome)
    const taskName = this.#resolveTaskName(state) ?? state.taskName
    const endFields = this.#fields.end(res, taskName, endedAt, outcome, unsent)
    const sharedFields = this.#fields.shared(state.clientIpSource, outcome)

    if (this.#writesFields) {
      this.tracker.recordEndFields?.(state.processorId, state.fixedFields, endFields, sharedFields)
    } else {
      this.tracker.recordEnd(state.processorId, `{${state.fixedFields},${endFields}${sharedFields}}`)
    }
  }

  /**
   * Calls the request's `resolveTaskName`, if any. When it throws, the
   * error is logged at most once per 30 s and the task keeps the name it
   * had at the start, so the request is still recorded.
   */
  #resolveTaskName(state: RequestState): unknown {
    if (state.resolveTaskName === undefined) return undefined
    try {
      return state.resolveTaskName(state.req)
    } catch (err) {
      const { method, url } = state.req
      this.logger.error({ err, method, path: describePathForLog(url) }, RESOLVE_TASK_NAME_THREW)
      return undefined
    }
  }

  /**
   * Returns the client address and protocol that a trusted proxy reported,
   * from the framework (`context`) or, with `trustProxy`, from the
   * forwarded headers. A value that is no IP address, or no known protocol,
   * is left out, so the socket's own is recorded and the header copy keeps
   * the rest: a client can send these headers through a proxy that passes
   * them on.
   */
  #resolveProxyFacts(req: IncomingMessage, context: TrackContext): RequestFacts {
    let { clientIp, protocol } = context
    if (this.options.trustProxy === true && clientIp === undefined) {
      const forwardedFor = req.headers['x-forwarded-for']
      const forwardedProto = req.headers['x-forwarded-proto']
      clientIp = typeof forwardedFor === 'string' ? forwardedFor.split(',')[0]?.trim() : undefined
      protocol = typeof forwardedProto === 'string' ? forwardedProto.split(',')[0]?.trim() : undefined
    }
    if (clientIp === undefined && protocol === undefined) return context
    return {
      ...context,
      clientIp: isForwardedAddress(clientIp, req.socket?.remoteAddress) ? clientIp : undefined,
      protocol: protocol !== undefined && FORWARDED_PROTOCOL.test(protocol) ? protocol.toLowerCase() : undefined,
    }
  }
}

/**
 * Returns whether a client address that a proxy header or the framework
 * gave is an IP address other than the socket's own. A framework that
 * trusts proxies gives the socket's address when the header is missing,
 * and the record then tags it as the socket's.
 */
function isForwardedAddress(address: string | undefined, socketAddress: string | undefined): address is string {
  return address !== undefined && address !== socketAddress && isIP(stripZone(address)) !== 0
}

/** The source of the tracker URL, as the start line names it. */
const URL_SOURCES = {
  option: 'from the trackerUrl option',
  environment: 'from TOP_TRACKER_URL',
  default: 'the default; set the trackerUrl option or TOP_TRACKER_URL to change it',
} as const

/**
 * Adds a new recorder's probe to `openRecorders`, and logs
 * `TOO_MANY_RECORDERS` the first time the awake recorders, the new one
 * included, pass `MAX_AWAKE_RECORDERS`.
 */
function countAwakeRecorders(probe: { readonly isAwake: () => boolean }, logger: Logger): void {
  // The new recorder counts as awake, because an adapter may make it idle until its first request.
  let awake = 1
  for (const other of openRecorders.recorders) {
    if (other.isAwake()) awake++
  }
  openRecorders.recorders.add(probe)
  if (awake <= MAX_AWAKE_RECORDERS || openRecorders.warned) return
  openRecorders.warned = true
  logger.warn({ awakeRecorders: awake }, TOO_MANY_RECORDERS)
}

/**
 * Options that change neither what a recorder writes nor where, so that two
 * recorders that differ only in them record a request alike.
 */
const UNRECORDED_OPTIONS = new Set(['logger', 'handleSignals'])

/**
 * Returns the name of the first option, other than `UNRECORDED_OPTIONS`, in
 * which two recorders' options differ (`haveSameOptions`), or undefined.
 * The options themselves may be plain objects or class instances, whose own
 * enumerable properties are compared.
 */
function findDifferentOption(a: TopOptions, b: TopOptions): string | undefined {
  const first = a as Record<string, unknown>
  const second = b as Record<string, unknown>
  for (const name of new Set([...Object.keys(first), ...Object.keys(second)])) {
    if (UNRECORDED_OPTIONS.has(name)) continue
    if (!haveSameOptions(first[name], second[name])) return name
  }
  return undefined
}

/**
 * Compares two option values: plain objects and arrays by their entries,
 * regular expressions by source and flags, anything else by identity (so
 * two `ignore` functions written alike differ).
 */
function haveSameOptions(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (a instanceof RegExp && b instanceof RegExp) return a.source === b.source && a.flags === b.flags
  if (!isPlainData(a) || !isPlainData(b) || Array.isArray(a) !== Array.isArray(b)) return false

  const aKeys = Object.keys(a)
  const bKeys = Object.keys(b)
  if (aKeys.length !== bKeys.length) return false
  return aKeys.every((key) => Object.hasOwn(b, key) && haveSameOptions(a[key], b[key]))
}

function isPlainData(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const prototype = Object.getPrototypeOf(value) as unknown
  return prototype === Object.prototype || prototype === Array.prototype || prototype === null
}

const RESOLVE_TASK_NAME_THREW =
  'web-top recorded a request without the task name from `resolveTaskName`, because the function threw: ' +
  'make it return a string, null or undefined without throwing'

/**
 * Returns true once a response has emitted `close`, after which no event
 * would end a task started for it. Node's HTTP/1 response sets `closed`
 * as it emits the event, and an HTTP/2 response emits it after its stream
 * has closed.
 * NOTE: an HTTP/2 stream has closed already when its response emits
 * `finish`, so `track()` called in a `finish` listener records nothing
 * there, while on HTTP/1 it records the request (checked on Node 20).
 */
function hasClosed(res: ServerResponse): boolean {
  const { closed } = res as { closed?: unknown }
  if (typeof closed === 'boolean') return closed
  return (res as { stream?: { closed?: unknown } }).stream?.closed === true
}

/** Protocols a proxy may report in `X-Forwarded-Proto`. */
const FORWARDED_PROTOCOL = /^(?:https?|wss?)$/i

/** Removes the zone of a scoped IPv6 address (`fe80::1%eth0`), which `isIP` rejects. */
function stripZone(address: string): string {
  const zone = address.indexOf('%')
  return zone === -1 ? address : address.slice(0, zone)
}

/**
 * Returns whether the client of a request that did not complete never got
 * the response head, so that the record shows the status it got instead.
 */
function isUnsent(res: ServerResponse, req: IncomingMessage, outcome: RequestOutcome): boolean {
  if (outcome === 'completed') return false
  // `requestTimeout` cuts only a request that has not arrived whole, and Node
  // then sends a 408 response itself unless bytes of the response went out.
  // A head the app writes afterwards, such as a body parser's 400 for the cut
  // body, goes to a destroyed socket, yet Node marks it as written. Such a
  // response has ended, and one still open, such as a stream that responds
  // before the body arrives, wrote its head before the cut.
  // NOTE: a response whose head went out before the cut but that ended
  // during it (in a request `aborted` handler, or with a large body still
  // buffered) is recorded as 408 too, although Node sent none.
  if (outcome === 'timeout') return !isHeadWrittenBeforeCut(res)
  // A request that Node's HTTP parser rejected is 'rejected' only when no
  // head had gone out when the parser failed, so Node sent its own response.
  if (outcome === 'rejected') return true
  // A response still queued behind another on a pipelined connection has
  // no socket: its head may be written, but the client never received it.
  // Nor did a client that went away while still sending its request
  // (`req.complete` false) receive a head sent later.
  return !isHeadWritten(res) || res.socket === null || req.complete === false
}
