/**
 * How a tracked request ends: exactly once, on the first of the
 * response's `finish`, its `close`, or, for a response queued behind
 * another on a pipelined connection, the connection's `close`. The state
 * of a request lives on its response under a symbol and is detached
 * before anything else runs, so no second event can end it again.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from '../util/logger'

/** Outcome of a tracked request: completed, or aborted because the client went away. */
export type RequestOutcome = 'completed' | 'aborted'

/** Source of the recorded client address: the TCP peer, or a trusted proxy's header. */
export type ClientIpSource = 'socket' | 'proxy'

export const kRequestState = Symbol('web-top.request')

/** The parts of the recorder that end a request. */
export interface RequestRecorder {
  readonly logger: Logger
  /** Builds the end record and hands it to the tracker. */
  writeEnd(res: ServerResponse, state: RequestState, outcome: RequestOutcome): void
  discard(res: ServerResponse): boolean
}

export interface RequestState {
  recorder: RequestRecorder
  req: IncomingMessage
  slot: number
  processorId: string
  /** Fields of the start record that the end record repeats, encoded once. */
  fixedFragment: string
  taskName: string | null
  resolveTaskName: ((req: IncomingMessage) => string | null | undefined) | undefined
  clientIpSource: ClientIpSource
  /** Set only for a response queued behind another on a pipelined connection. */
  onConnectionClose: (() => void) | null
}

export type TrackedResponse = ServerResponse & { [kRequestState]?: RequestState }

/** Attaches the state to a response and ends the task on the first event that finishes it. */
export function watchResponse(res: TrackedResponse, state: RequestState): void {
  res[kRequestState] = state
  // `on` rather than `once`: detachState() removes both listeners, and
  // `once` would allocate a wrapper function per listener and request.
  res.on('finish', onResponseFinish)
  res.on('close', onResponseClose)
  if (res.socket === null) watchQueuedResponse(res, state)
}

/**
 * Stops recording the request that `res` belongs to, without recording it,
 * whichever recorder tracks it. Returns false when no recorder tracks it.
 * The tracker endpoints call this for their own requests.
 */
export function discardRecording(res: ServerResponse): boolean {
  const state = (res as TrackedResponse)[kRequestState]
  return state === undefined ? false : state.recorder.discard(res)
}

/** Detaches the state and every listener from a response, so that nothing ends it again. */
export function detachState(res: TrackedResponse, state: RequestState): void {
  res[kRequestState] = undefined
  res.off('finish', onResponseFinish)
  res.off('close', onResponseClose)
  if (state.onConnectionClose !== null) state.req.socket?.off('close', state.onConnectionClose)
}

/** Ends a task exactly once: the state is detached before anything else runs. */
export function finishTask(
  res: TrackedResponse,
  state: RequestState,
  outcome: RequestOutcome,
): void {
  detachState(res, state)

  try {
    state.recorder.writeEnd(res, state, outcome)
  } catch (err) {
    const { method, url } = state.req
    state.recorder.logger.error({ err, method, url }, 'web-top failed to record a response')
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

/**
 * Ends a response that waits behind another on a pipelined connection when
 * the connection closes. Such a response has no socket yet, and if the
 * connection closes first Node emits neither `close` nor `finish` on it
 * (checked on Node 20). Rare, so the closure per request is affordable here.
 */
function watchQueuedResponse(res: TrackedResponse, state: RequestState): void {
  const socket: Socket | null = state.req.socket
  if (socket === null || typeof socket.once !== 'function') return

  state.onConnectionClose = () => {
    const current = res[kRequestState]
    // A response that got the socket meanwhile ends through its own `close` event.
    if (current !== undefined && res.socket === null) finishTask(res, current, 'aborted')
  }
  socket.once('close', state.onConnectionClose)
}
