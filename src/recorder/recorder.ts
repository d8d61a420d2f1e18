/**
 * The framework-neutral recorder: starts a task when a request arrives,
 * ends it exactly once when the response finishes or the connection
 * closes, and hands both records to a tracker. The adapters only translate
 * framework hooks into calls of `track()`.
 *
 * A recorder also refreshes a heartbeat, removes the entries an earlier
 * process with the same host, pid and thread left behind, and removes its
 * own entries when it closes: on `close()`, on SIGTERM or SIGINT when the
 * app does not handle them (signals.ts), and, as "idle", when every HTTP
 * server it was watching has closed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { resolveOptions, type ResolvedOptions, type TopOptions } from '../options'
import {
  captureRequest,
  captureResponse,
  type CaptureSettings,
  type RequestFacts,
  type ResponsePart,
} from '../task/capture'
import { CLIENT_IP_SOURCE_TAG } from '../task/derived'
import { createRedactionRules } from '../task/redact'
import { formatIsoTime, nowMs } from '../task/time'
import { encodeFields, joinFragments } from '../task/wire'
import type { Tracker } from '../trackers/tracker'
import { createConsoleLogger, createRateLimitedLogger, type Logger } from '../util/logger'
import { HeartbeatSender } from './heartbeat-sender'
import { RecorderLifecycle, type WatchedServer } from './lifecycle'
import { openTracker } from './open-tracker'
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
  finishTask,
  kRequestState,
  watchResponse,
  type ClientIpSource,
  type RequestOutcome,
  type RequestState,
  type TrackedResponse,
} from './request-end'

/** Status recorded for a request whose client went away before the response was sent (nginx's code). */
export const CLIENT_CLOSED_STATUS = 499

/** Response part of a task whose client went away before any response header was sent. */
const CLIENT_CLOSED_RESPONSE: ResponsePart = Object.freeze({
  status_code: CLIENT_CLOSED_STATUS,
  status_message: `${CLIENT_CLOSED_STATUS} Client Closed Request`,
  response_headers: null,
})

/** Tag set on tasks that did not end with a complete response. */
export const OUTCOME_TAG = 'web_top.outcome'

export type { RequestOutcome, WatchedServer }
export { discardRecording }

/** What an adapter knows about a request besides `req` and `res`. */
export interface TrackContext extends RequestFacts {
  /** Route pattern, when the framework knows it at the start (Fastify). */
  taskName?: string | null | undefined
  /** Reads the route pattern when the request ends (Express resolves it while routing). */
  resolveTaskName?: ((req: IncomingMessage) => string | null | undefined) | undefined
}

/** Recorders created in this process, so that each one's processor ids have their own prefix. */
let recorderCount = 0
let taskSequence = 0
const TASK_ID_PREFIX = `${process.pid}-${Date.now().toString(36)}-`

export class Recorder {
  readonly tracker: Tracker
  readonly options: ResolvedOptions
  readonly logger: Logger

  readonly #capture: CaptureSettings
  readonly #processFragment: string
  /** Encoded tags for each pair of client address source and outcome. */
  readonly #tagFragments: Record<`${ClientIpSource}:${RequestOutcome}`, string>
  /** `<host>/<pid>-<thread id>-`, shared by every recorder of this process. */
  readonly #processIdPrefix: string
  /** `<recorder number>.`, the part of `process_internal_id` before the slot. */
  readonly #internalIdPrefix: string
  readonly #slots = new SlotPool()
  readonly #lifecycle: RecorderLifecycle
  #inFlight = 0
  #completed = 0

  constructor(options: TopOptions = {}) {
    this.options = resolveOptions(options)
    const appLogger = this.options.logger ?? createConsoleLogger()
    // Rate-limited even for the app's own logger, so that a failure repeated
    // on every request logs at most once per 30 s.
    this.logger = createRateLimitedLogger(appLogger)
    const { tracker, owned } = openTracker(this.options, appLogger)
    this.tracker = tracker

    this.#capture = {
      captureHeaders: this.options.captureHeaders,
      rules: createRedactionRules(this.options.redaction),
      limits: this.options.limits,
    }

    const facts = readProcessFacts()
    this.#processIdPrefix = processorIdPrefix(facts)
    this.#internalIdPrefix = `${++recorderCount}.`
    this.#processFragment = encodeFields({
      ...facts,
      processor_name: this.options.processorName ?? defaultProcessorName(facts),
    })

    const tags = { ...defaultTags(), ...this.options.tags }
    const encodeTags = (source: ClientIpSource, outcome: RequestOutcome) =>
      encodeFields({
        tags: {
          ...tags,
          [CLIENT_IP_SOURCE_TAG]: source,
          ...(outcome === 'aborted' ? { [OUTCOME_TAG]: 'aborted' } : {}),
        },
      })
    this.#tagFragments = {
      'socket:completed': encodeTags('socket', 'completed'),
      'socket:aborted': encodeTags('socket', 'aborted'),
      'proxy:completed': encodeTags('proxy', 'completed'),
      'proxy:aborted': encodeTags('proxy', 'aborted'),
    }

    // An earlier process with the same host, pid and thread id (a restart
    // that got the pid back) may have left entries under this prefix. The
    // removal is queued before this recorder's first write.
    this.tracker.queueRemoveProcessors?.(this.processorIdPrefix)

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
    })
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
   * finishes or its connection closes, whichever comes first. Returns
   * whether this call started a task: false for an ignored path, a request
   * already tracked, a closed recorder or a failure. Never throws: a failure
   * to record is logged and the request goes on untouched.
   */
  track(req: IncomingMessage, res: ServerResponse, context: TrackContext = {}): boolean {
    if (this.#lifecycle.state !== 'open' && !this.#lifecycle.wake()) return false
    if ((res as TrackedResponse)[kRequestState] !== undefined) return false

    try {
      const path = pathOf(context.url ?? req.url)
      if (this.options.isIgnored(req, path)) return false
      this.#start(req, res as TrackedResponse, context)
      return true
    } catch (err) {
      this.logger.error({ err, method: req.method, url: req.url }, 'web-top failed to record a request')
      return false
    }
  }

  /** Ends a tracked request now, before its response finishes (for frameworks that know better). */
  end(res: ServerResponse, outcome: RequestOutcome): void {
    const state = (res as TrackedResponse)[kRequestState]
    if (state !== undefined) finishTask(res as TrackedResponse, state, outcome)
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
    const state = (res as TrackedResponse)[kRequestState]
    if (state === undefined || state.recorder !== this || this.tracker.recordDiscard === undefined) {
      return false
    }

    detachState(res as TrackedResponse, state)
    try {
      this.tracker.recordDiscard(state.processorId)
    } finally {
      this.#releaseSlot(state)
    }
    return true
  }

  /**
   * Watches an HTTP server that requests come from. When every watched
   * server has closed, the recorder goes idle: it removes its entries and
   * heartbeat and closes the connection it opened, so that the process can
   * exit. The next request wakes it up. The Express middleware calls this
   * with `req.socket.server`, because Express has no close hook.
   */
  watchServer(server: WatchedServer | null | undefined): void {
    this.#lifecycle.watchServer(server)
  }

  /**
   * Stops recording, removes the active entries and the heartbeat of this
   * recorder and closes the tracker if the recorder opened it. When Redis
   * does not reply, gives up after about 4 s. Requests still in flight end
   * unrecorded. Other recorders of the same process keep their entries.
   */
  close(): Promise<void> {
    return this.#lifecycle.close()
  }

  #releaseSlot(state: RequestState): void {
    this.#slots.release(state.slot)
    this.#inFlight--
  }

  #start(req: IncomingMessage, res: TrackedResponse, context: TrackContext): void {
    const startedAt = formatIsoTime(nowMs())
    const taskName = context.taskName ?? null
    const facts = this.#resolveProxyFacts(req, context)
    const clientIpSource: ClientIpSource = facts.clientIp === undefined ? 'socket' : 'proxy'
    const requestFragment = encodeFields(captureRequest(req, this.#capture, facts))

    const slot = this.#slots.acquire()
    const internalId = this.#internalIdPrefix + slot
    const fixedFragment = joinFragments(
      encodeFields({
        task_id: TASK_ID_PREFIX + ++taskSequence,
        process_internal_id: internalId,
        started_at: startedAt,
      }),
      this.#processFragment,
      requestFragment,
    ).slice(1, -1)

    const state: RequestState = {
      recorder: this,
      req,
      slot,
      processorId: this.#processIdPrefix + internalId,
      fixedFragment,
      taskName,
      resolveTaskName: context.resolveTaskName,
      clientIpSource,
      onConnectionClose: null,
    }
    this.#inFlight++
    watchResponse(res, state)

    const startFragment = encodeFields({
      task_name: taskName,
      updated_at: startedAt,
      ended_at: null,
      recorded_successfully: null,
      status_code: null,
      status_message: null,
      response_headers: null,
    })
    this.tracker.recordStart(
      state.processorId,
      joinFragments(fixedFragment, startFragment, this.#tagFragments[`${clientIpSource}:completed`]),
    )
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
    const endedAt = formatIsoTime(nowMs())
    const aborted = outcome === 'aborted'
    // A response still queued behind another on a pipelined connection has
    // no socket: its head may be written, but the client never received it.
    const unsent = aborted && (!res.headersSent || res.socket === null)
    const response = unsent ? CLIENT_CLOSED_RESPONSE : captureResponse(res, this.#capture)

    const taskName = state.resolveTaskName?.(state.req) ?? state.taskName
    const endFragment = encodeFields({
      task_name: taskName,
      updated_at: endedAt,
      ended_at: endedAt,
      recorded_successfully: !aborted,
      ...response,
    })
    const tagFragment = this.#tagFragments[`${state.clientIpSource}:${outcome}`]
    this.tracker.recordEnd(state.processorId, joinFragments(state.fixedFragment, endFragment, tagFragment))
  }

  #resolveProxyFacts(req: IncomingMessage, context: TrackContext): RequestFacts {
    if (this.options.trustProxy !== true || context.clientIp !== undefined) return context

    const forwardedFor = req.headers['x-forwarded-for']
    const forwardedProto = req.headers['x-forwarded-proto']
    return {
      ...context,
      clientIp: typeof forwardedFor === 'string' ? forwardedFor.split(',')[0]?.trim() : undefined,
      protocol: typeof forwardedProto === 'string' ? forwardedProto.split(',')[0]?.trim() : undefined,
    }
  }

}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/'
  const queryStart = url.indexOf('?')
  return queryStart === -1 ? url : url.slice(0, queryStart)
}
