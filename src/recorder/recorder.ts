/**
 * The framework-neutral recorder: starts a task when a request arrives,
 * ends it exactly once when the response finishes or the connection
 * closes, and hands both records to a tracker. The adapters only translate
 * framework hooks into calls of `track()`.
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
import { createTrackerFromUrl } from '../trackers/from-url'
import { RedisTracker } from '../trackers/redis-tracker'
import type { Tracker } from '../trackers/tracker'
import { createConsoleLogger, createRateLimitedLogger, type Logger } from '../util/logger'
import {
  defaultProcessorName,
  defaultTags,
  processorIdPrefix,
  readProcessFacts,
  SlotPool,
} from './process-facts'

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

/** How a tracked request ended. */
export type RequestOutcome = 'completed' | 'aborted'

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

const kRequestState = Symbol('web-top.request')

interface RequestState {
  recorder: Recorder
  req: IncomingMessage
  slot: number
  processorId: string
  /** Fields of the start record that the end record repeats, encoded once. */
  fixedFragment: string
  taskName: string | null
  resolveTaskName: TrackContext['resolveTaskName']
  clientIpSource: ClientIpSource
}

/** Where the recorded client address came from: the TCP peer, or a trusted proxy's header. */
type ClientIpSource = 'socket' | 'proxy'

type TrackedResponse = ServerResponse & { [kRequestState]?: RequestState }

export class Recorder {
  readonly tracker: Tracker
  readonly options: ResolvedOptions
  readonly logger: Logger

  readonly #ownsTracker: boolean
  readonly #capture: CaptureSettings
  readonly #processFragment: string
  /** Encoded tags for each pair of client address source and outcome. */
  readonly #tagFragments: Record<`${ClientIpSource}:${RequestOutcome}`, string>
  /** `<host>/<pid>-<thread id>-`, shared by every recorder of this process. */
  readonly #processIdPrefix: string
  /** `<recorder number>.`, the part of `process_internal_id` before the slot. */
  readonly #internalIdPrefix: string
  readonly #slots = new SlotPool()
  #closed = false

  constructor(options: TopOptions = {}) {
    this.options = resolveOptions(options)
    // Rate-limited even for the app's own logger, so that a failure repeated
    // on every request logs at most once per 30 s.
    this.logger = createRateLimitedLogger(this.options.logger ?? createConsoleLogger())
    const { tracker, owned } = openTracker(this.options, this.logger)
    this.tracker = tracker
    this.#ownsTracker = owned

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
  }

  /** Prefix of the processor ids of every recorder of this process, for cleanup after a restart. */
  get processorIdPrefix(): string {
    return this.#processIdPrefix
  }

  /**
   * Starts recording a request and ends the task when the response
   * finishes or its connection closes, whichever comes first. Returns
   * whether this call started a task: false for an ignored path, a request
   * already tracked, a closed recorder or a failure. Never throws: a failure
   * to record is logged and the request goes on untouched.
   */
  track(req: IncomingMessage, res: ServerResponse, context: TrackContext = {}): boolean {
    if (this.#closed || (res as TrackedResponse)[kRequestState] !== undefined) return false

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
   * Stops recording, removes the active entries of this recorder from the
   * tracker and closes the tracker if the recorder opened it. Requests
   * still in flight end unrecorded. Other recorders of the same process
   * keep their entries.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true

    try {
      await this.tracker.flush()
      await this.tracker.removeProcessors(this.#processIdPrefix + this.#internalIdPrefix)
    } catch (err) {
      this.logger.warn({ err }, 'web-top could not remove the active tasks of this process')
    }
    if (this.#ownsTracker) await this.tracker.close()
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
    }
    res[kRequestState] = state
    // `on` rather than `once`: finishTask() removes both listeners, and
    // `once` would allocate a wrapper function per listener and request.
    res.on('finish', onResponseFinish)
    res.on('close', onResponseClose)

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
      if (!this.#closed) this.#writeEnd(res, state, outcome)
    } finally {
      this.#slots.release(state.slot)
    }
  }

  #writeEnd(res: ServerResponse, state: RequestState, outcome: RequestOutcome): void {
    const endedAt = formatIsoTime(nowMs())
    const aborted = outcome === 'aborted'
    const response =
      aborted && !res.headersSent ? CLIENT_CLOSED_RESPONSE : captureResponse(res, this.#capture)

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

function onResponseFinish(this: TrackedResponse): void {
  const state = this[kRequestState]
  if (state !== undefined) finishTask(this, state, 'completed')
}

function onResponseClose(this: TrackedResponse): void {
  const state = this[kRequestState]
  if (state !== undefined) finishTask(this, state, this.writableFinished ? 'completed' : 'aborted')
}

/** Ends a task exactly once: the state is detached before anything else runs. */
function finishTask(res: TrackedResponse, state: RequestState, outcome: RequestOutcome): void {
  res[kRequestState] = undefined
  res.off('finish', onResponseFinish)
  res.off('close', onResponseClose)

  try {
    state.recorder.writeEnd(res, state, outcome)
  } catch (err) {
    state.recorder.logger.error({ err, method: state.req.method, url: state.req.url }, 'web-top failed to record a response')
  }
}

function openTracker(options: ResolvedOptions, logger: Logger): { tracker: Tracker; owned: boolean } {
  if (options.tracker) return { tracker: options.tracker, owned: false }

  if (options.redis) {
    const tracker = new RedisTracker({
      client: options.redis,
      keyPrefix: options.keyPrefix,
      maxCompletedTasks: options.maxCompletedTasks,
      logger,
    })
    return { tracker, owned: true }
  }

  const tracker = createTrackerFromUrl(options.trackerUrl, {
    keyPrefix: options.keyPrefix,
    maxCompletedTasks: options.maxCompletedTasks,
    logger,
  })
  return { tracker, owned: tracker.kind !== 'memory' }
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/'
  const queryStart = url.indexOf('?')
  return queryStart === -1 ? url : url.slice(0, queryStart)
}
