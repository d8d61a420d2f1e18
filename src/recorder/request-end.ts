/**
 * How a tracked request ends, exactly once. A response of Node's
 * `http.Server` ends when it finishes, through the diagnostics channel
 * `http.server.response.finish`. Any response also ends on its `close`
 * event, which comes first when the connection closes before the response
 * finished. A response queued behind another on a pipelined connection
 * ends on the connection's `close`. The state of a request sits in a
 * WeakMap keyed by its response and is removed before anything else runs,
 * so no second event can end the request again.
 *
 * The code touches the response as little as it can. Express gives each
 * request and response the prototype of its app, after which each of them
 * has a V8 map of its own (checked with `%HaveSameMap` on Node 20). Adding
 * a property then copies the map, and reading one misses V8's inline
 * caches. In A/B load tests (2-core VM, hello-world route), adding two
 * properties to Express's `req` cost about 10 µs per request, and reading
 * five of them 4 to 6 µs. So the state is no property of the response,
 * the `close` listener stays after the request ended (it then finds no
 * state), and the finish channel spares reading `writableFinished`.
 *
 * A response that finishes with no state, on a server passed to
 * `watchUntrackedResponses()`, goes to that server's handler instead. The
 * Fastify plugin uses this for the responses that Fastify sends without
 * running any hook. Only responses without state pay for that lookup.
 */
import { subscribe } from 'node:diagnostics_channel'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { describePathForLog } from '../util/log-path'
import type { Logger } from '../util/logger'

/**
 * Outcome of a tracked request: completed, aborted because the client went
 * away, cut off by the server's `requestTimeout` before the request
 * arrived whole, or rejected by Node's HTTP parser partway through (a
 * malformed chunk, trailers over the header size limit), to which Node
 * sends an error response itself.
 */
export type RequestOutcome = 'completed' | 'aborted' | 'timeout' | 'rejected'

/** Source of the recorded client address: the TCP peer, or a trusted proxy's header. */
export type ClientIpSource = 'socket' | 'proxy'

/** The state of each tracked response, until the request ends. */
const requestStates = new WeakMap<ServerResponse, RequestState>()

/** Channel on which Node 20's `http.Server` reports each response that finished (`resOnFinish`). */
const RESPONSE_FINISH_CHANNEL = 'http.server.response.finish'
let finishChannelSubscribed = false

/**
 * Records a request whose response finished without a recorder tracking it.
 * It must not throw, because it runs in a diagnostics channel subscriber,
 * where an error becomes an uncaught exception of the app (checked on Node 20).
 */
export type UntrackedResponseHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  outcome: RequestOutcome,
) => void

/** The handler of each server passed to `watchUntrackedResponses()`. */
const untrackedResponseHandlers = new WeakMap<object, UntrackedResponseHandler>()

/**
 * Responses that the untracked handlers must skip: left unrecorded on
 * purpose, or recorded already when they closed before they finished.
 */
const unrecordedResponses = new WeakSet<ServerResponse>()

/** The fields of a `http.server.response.finish` message (Node 20). */
interface ResponseFinishMessage {
  request?: IncomingMessage
  response?: ServerResponse
  socket?: Socket | null
  server?: object
}

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
  fixedFields: string
  /** `readClockOriginMs()` at the start, from which the end time is counted (`nowFromOriginMs()`). */
  clockOriginMs: number
  taskName: string | null
  resolveTaskName: ((req: IncomingMessage) => string | null | undefined) | undefined
  clientIpSource: ClientIpSource
  /** False for a request left out by `completedSampleRate`: it ends without a record. */
  sampled: boolean
  /** The connection of a response queued behind another on it, set only for such a response. */
  queuedOn: Socket | null
}

/** Returns the state of a tracked response, or undefined when no request is recorded on it. */
export function getRequestState(res: ServerResponse): RequestState | undefined {
  return requestStates.get(res)
}

/** Attaches the state to a response and ends the task when the response finishes or closes. */
export function watchResponse(res: ServerResponse, state: RequestState): void {
  requestStates.set(res, state)
  subscribeToFinishChannel()
  // `on` rather than `once`, which would allocate a wrapper function per request.
  res.on('close', onResponseClose)
  if (res.socket === null) watchQueuedResponse(res, state)
}

/**
 * Hands each response of `server` that finishes untracked, and not marked
 * with `markUnrecorded()`, to `handler`. A server keeps the first handler
 * it gets. Responses that close before they finish are not handed over.
 */
export function watchUntrackedResponses(server: object, handler: UntrackedResponseHandler): void {
  if (!untrackedResponseHandlers.has(server)) untrackedResponseHandlers.set(server, handler)
  subscribeToFinishChannel()
}

/** Stops `watchUntrackedResponses()` for `server`, if `handler` is the one it has. */
export function unwatchUntrackedResponses(server: object, handler: UntrackedResponseHandler): void {
  if (untrackedResponseHandlers.get(server) === handler) untrackedResponseHandlers.delete(server)
}

/** Keeps the response of a request left unrecorded on purpose from the untracked handlers. */
export function markUnrecorded(res: ServerResponse): void {
  unrecordedResponses.add(res)
}

/**
 * Stops recording the request that `res` belongs to, without recording it,
 * whichever recorder tracks it. Returns false when no recorder tracks it.
 * The tracker endpoints call this for their own requests.
 */
export function discardRecording(res: ServerResponse): boolean {
  const state = requestStates.get(res)
  return state === undefined ? false : state.recorder.discard(res)
}

/**
 * Detaches the state from a response, so that nothing ends it again. The
 * response's `close` listener stays and finds no state.
 */
export function detachState(res: ServerResponse, state: RequestState): void {
  requestStates.delete(res)
  if (state.queuedOn !== null) queuedResponses.get(state.queuedOn)?.delete(res)
}

/** Ends a task exactly once: the state is detached before anything else runs. */
export function finishTask(
  res: ServerResponse,
  state: RequestState,
  outcome: RequestOutcome,
): void {
  detachState(res, state)

  try {
    state.recorder.writeEnd(res, state, outcome)
  } catch (err) {
    const { method, url } = state.req
    state.recorder.logger.error({ err, method, path: describePathForLog(url) }, 'web-top failed to record a response')
  }
}

/**
 * Ends the request of `res` now, as its `close` event would, when its
 * connection is already destroyed. Node emits a server's `close` event as
 * soon as its last connection is destroyed, and the response's `close`
 * event only once the socket handle has closed, a turn of the event loop
 * later (Node 20). A recorder that closes or goes idle in between calls
 * this, so that a client's abort is recorded as such.
 */
export function endIfConnectionClosed(res: ServerResponse): void {
  const state = requestStates.get(res)
  if (state !== undefined && state.req.socket?.destroyed === true) endClosedResponse(res, state)
}

/** Ends the request of `res` now, as its `close` event would: for a response that had closed before it was tracked. */
export function endClosedNow(res: ServerResponse): void {
  const state = requestStates.get(res)
  if (state !== undefined) endClosedResponse(res, state)
}

function subscribeToFinishChannel(): void {
  if (finishChannelSubscribed) return
  subscribe(RESPONSE_FINISH_CHANNEL, onResponseFinishMessage)
  finishChannelSubscribed = true
}

function onResponseFinishMessage(message: unknown): void {
  const finished = message as ResponseFinishMessage
  const { response: res, socket } = finished
  if (res === undefined) return
  const state = requestStates.get(res)
  if (state === undefined) {
    handleUntrackedResponse(finished, res)
    return
  }
  finishTask(res, state, outcomeOfFinish(state.req, socket))
}

/**
 * Returns how a request ends whose response finished. An error handler's
 * reply to a request body cut short (by the client, `requestTimeout` or
 * Node's HTTP parser) finishes on a destroyed socket and never reached the
 * client: its head was written after the cut. A socket destroyed after a
 * complete request may still have sent the whole response
 * (`server.closeIdleConnections()` right after `res.end()`, or a response
 * written whole before Node's HTTP parser failed on the bytes after its
 * request in the same read).
 * NOTE: a response with a `Content-Length` whose body was all written
 * with `write()`, then ended with a bare `end()` after the cut, finishes
 * too, because Node 20 then emits `finish` on the next tick without
 * writing. It is recorded as completed although the client got Node's 400.
 */
function outcomeOfFinish(req: IncomingMessage, socket: Socket | null | undefined): RequestOutcome {
  return socket?.destroyed === true && req.complete === false ? outcomeOfCut(req, false) : 'completed'
}

function handleUntrackedResponse(message: ResponseFinishMessage, res: ServerResponse): void {
  const { request: req, server, socket } = message
  if (req === undefined || server === undefined) return
  const handler = untrackedResponseHandlers.get(server)
  if (handler === undefined || unrecordedResponses.has(res)) return
  handler(req, res, outcomeOfFinish(req, socket))
}

function onResponseClose(this: ServerResponse): void {
  const state = requestStates.get(this)
  if (state !== undefined) endClosedResponse(this, state)
}

function endClosedResponse(res: ServerResponse, state: RequestState): void {
  const { req } = state
  // Node 20 may still emit `finish` for a response ended after its
  // connection closed (a bare `end()` after a body written in full), and the
  // response, untracked by then, would be recorded a second time.
  unrecordedResponses.add(res)
  finishTask(res, state, isCompleted(req, res) ? 'completed' : outcomeOfCut(req, isHeadWrittenBeforeCut(res)))
}

/**
 * Returns whether the head of a response that closed unfinished went out
 * before its connection was cut. Node emits the request's `aborted` event
 * just before the response's `close`. An error handler that responds to
 * it at once, such as Express's for a body parser's error, writes and ends
 * a response that never leaves. A response not ended yet, such as a
 * stream, wrote its head before the cut (checked on Node 20).
 * NOTE: a response that was ended while part of it still sat in the buffer
 * counts as not sent, so it is recorded as `rejected` with Node's status,
 * although Node sends nothing once bytes of a response went out.
 */
export function isHeadWrittenBeforeCut(res: ServerResponse): boolean {
  return isHeadWritten(res) && !res.writableEnded
}

/**
 * Returns why a request ended before its response did. Node closes a
 * connection whose request has not arrived whole within `requestTimeout`
 * with the error `ERR_HTTP_REQUEST_TIMEOUT`, and one whose bytes its HTTP
 * parser rejects with the parser's error (`HPE_…`). In both cases it
 * first sends a response itself (`clientErrorStatus()`) when no response
 * head was written yet, and so does Fastify's client error handler. On a
 * pipelined connection, that response goes to the oldest request still
 * waiting, whose response is the one attached to the connection.
 * NOTE: when the response before it went out whole just before the parser
 * failed, Node sends nothing, and the next response, which gets the
 * connection after the cut, is still recorded as `rejected`. Fastify's
 * client error handler does send its 400 then, and the client pairs it
 * with that next request.
 */
function outcomeOfCut(req: IncomingMessage, headWrittenBeforeCut: boolean): RequestOutcome {
  const code = socketErrorCode(req)
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'timeout'
  return isRejection(code) && !headWrittenBeforeCut ? 'rejected' : 'aborted'
}

/** Start of the codes of Node's HTTP parser errors (llhttp), such as `HPE_INVALID_CHUNK_SIZE`. */
const PARSER_ERROR_PREFIX = 'HPE_'

/**
 * The parser's error for a connection that the client ended partway
 * through a request. Node sends 400 for it too, but the client went away,
 * so with both directions closed the response never reaches it.
 */
const CLIENT_ENDED_CODE = 'HPE_INVALID_EOF_STATE'

/** Returns whether a socket error code is Node's HTTP parser rejecting the bytes it received. */
function isRejection(code: string | undefined): boolean {
  return code !== undefined && code.startsWith(PARSER_ERROR_PREFIX) && code !== CLIENT_ENDED_CODE
}

/** Returns the code of the error that destroyed a request's connection, if any. */
function socketErrorCode(req: IncomingMessage): string | undefined {
  const error = (req.socket as (Socket & { errored?: { code?: unknown } | null }) | null)?.errored
  return typeof error?.code === 'string' ? error.code : undefined
}

/**
 * Returns the status of the response that Node sent itself when its HTTP
 * parser rejected the request of `req` (`socketOnError` in Node 20's
 * `_http_server.js`). It is 431 for headers over the size limit, which a
 * request's trailers can reach, 413 for chunk extensions over theirs, and
 * 400 for the rest. Fastify 5's client error handler sends 431 too, and
 * 400 for any other parser error. A request with no such error counts as 400.
 */
export function clientErrorStatus(req: IncomingMessage): number {
  const code = socketErrorCode(req)
  if (code === 'HPE_HEADER_OVERFLOW') return 431
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' && !hasClientErrorListener(req)) return 413
  return 400
}

/** Returns whether the server of a request's connection has a `clientError` listener (Fastify has one), which then responds instead of Node. */
function hasClientErrorListener(req: IncomingMessage): boolean {
  const server = (req.socket as (Socket & { server?: { listenerCount?: (event: string) => number } }) | null)?.server
  return (server?.listenerCount?.('clientError') ?? 0) > 0
}

/**
 * Returns whether the response head went out to the connection. After
 * `writeHead()` alone, `headersSent` is true, but Node writes the head only
 * with the first body chunk, `end()` or `flushHeaders()`, and marks that in
 * its internal `_headerSent` (Node 20). A response without that field, as
 * an HTTP/2 one, goes by `headersSent`.
 */
export function isHeadWritten(res: ServerResponse): boolean {
  return res.headersSent && (res as ServerResponse & { _headerSent?: boolean })._headerSent !== false
}

/** HTTP/2's error code of a stream that closed without error. */
const NGHTTP2_NO_ERROR = 0

/** Returns whether a response that closed before its finish event reached the client whole. */
function isCompleted(req: IncomingMessage, res: ServerResponse): boolean {
  // An HTTP/2 response counts as finished even when the client reset its
  // stream (checked on Node 20), so the stream's error code decides.
  if (req.httpVersionMajor === 2) {
    const stream = (res as ServerResponse & { stream?: { rstCode?: number } }).stream
    return res.writableEnded && stream?.rstCode === NGHTTP2_NO_ERROR
  }
  // A response that finished for a request whose body never fully arrived
  // was written to a connection the client had already closed. Nor did a
  // response without a finish event reach the client whole when the server
  // cut its connection, as when Node's HTTP parser failed on bytes
  // pipelined after the request. Either it ended after the cut and Node
  // discarded it, or its last write was still in progress.
  const destroyed = req.socket?.destroyed === true
  const cutShort = destroyed && (req.complete === false || isCutByServer(socketErrorCode(req)))
  return (res.writableFinished || isInjected(req, res)) && !cutShort
}

/**
 * Returns whether a socket error code is the server cutting the
 * connection: Node's HTTP parser failed on the bytes it received, or the
 * request timed out (`requestTimeout`).
 */
function isCutByServer(code: string | undefined): boolean {
  return code === 'ERR_HTTP_REQUEST_TIMEOUT' || (code !== undefined && code.startsWith(PARSER_ERROR_PREFIX))
}

/**
 * Returns true for a request injected without a network connection, such
 * as Fastify's `inject()` (light-my-request), whose socket is no
 * `net.Socket`. Its response never counts as finished (checked with
 * Fastify 5.12 on Node 20), but it reached its caller once it ended.
 */
function isInjected(req: IncomingMessage, res: ServerResponse): boolean {
  return res.writableEnded && req.socket != null && !(req.socket instanceof Socket)
}

/**
 * Responses queued behind another on each pipelined connection. One `close`
 * listener per connection ends them all: a listener per response made
 * Node warn about a possible leak (`MaxListenersExceededWarning`) once a
 * client pipelined more than 10 requests.
 */
const queuedResponses = new WeakMap<Socket, Set<ServerResponse>>()

/**
 * Ends a response that waits behind another on a pipelined connection when
 * the connection closes. Such a response has no socket yet, and if the
 * connection closes first Node emits neither `close` nor `finish` on it
 * (checked on Node 20).
 */
function watchQueuedResponse(res: ServerResponse, state: RequestState): void {
  const socket: Socket | null = state.req.socket
  if (socket === null || typeof socket.once !== 'function') return

  let queued = queuedResponses.get(socket)
  if (queued === undefined) {
    queued = new Set()
    queuedResponses.set(socket, queued)
    socket.once('close', () => endQueuedResponses(socket))
  }
  queued.add(res)
  state.queuedOn = socket
}

function endQueuedResponses(socket: Socket): void {
  const queued = queuedResponses.get(socket)
  queuedResponses.delete(socket)
  for (const res of queued ?? []) {
    const state = requestStates.get(res)
    // A response that got the socket meanwhile ends through its own `close` event.
    if (state !== undefined && res.socket === null) finishTask(res, state, 'aborted')
  }
}
