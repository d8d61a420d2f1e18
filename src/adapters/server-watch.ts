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
 * (`req.socket.server`) to `recorder.watchServer()`, skipping the call when
 * the server is the one of the previous request.
 */
export function createServerWatch(recorder: Recorder): (req: IncomingMessage) => void {
  // Without a server to watch yet, a server closed before its first request
  // would leave the recorder holding the process.
  recorder.idleUntilFirstRequest()
  let lastServer: WatchedServer | undefined
  return function watchRequestServer(req) {
    // `server` is set by Node's net module on every accepted socket (checked on Node 20).
    const server = (req.socket as { server?: WatchedServer } | null)?.server
    if (server === lastServer) return
    lastServer = server
    recorder.watchServer(server)
  }
}
