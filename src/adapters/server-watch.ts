/**
 * Watching the HTTP server of each request, for adapters whose framework
 * has no close hook (Express, plain `node:http`, Koa): the recorder starts
 * idle, and once every server seen has closed, it goes idle again and lets
 * the process exit.
 */
import type { IncomingMessage } from 'node:http'
import type { Recorder, WatchedServer } from '../recorder/recorder'

/**
 * Leaves `recorder` idle until its first request and returns a function to
 * call with each request. The function hands the request's server
 * (`req.socket.server`) to `recorder.watchServer()`, which returns at once
 * for a server it already watches.
 */
export function createServerWatch(recorder: Recorder): (req: IncomingMessage) => void {
  // Without a server to watch yet, a server closed before its first request
  // would leave the recorder holding the process.
  recorder.idleUntilFirstRequest()
  return function watchRequestServer(req) {
    // `server` is set by Node's net module on every accepted socket (checked on Node 20).
    // The call is made for every request, not only when the server changes: a
    // server that closed and listens again is the same object, and the
    // recorder forgot it at its close.
    recorder.watchServer((req.socket as { server?: WatchedServer } | null)?.server)
  }
}
