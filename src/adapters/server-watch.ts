/**
 * Watching the HTTP server of each request, for adapters whose framework
 * has no close hook (Express, plain `node:http`, Koa): once every server
 * seen has closed, the recorder goes idle and lets the process exit.
 */
import type { IncomingMessage } from 'node:http'
import type { Recorder, WatchedServer } from '../recorder/recorder'

/**
 * Returns a function to call with each request: it hands the request's
 * server (`req.socket.server`) to `recorder.watchServer()`, skipping the
 * call when the server is the one of the previous request.
 */
export function createServerWatch(recorder: Recorder): (req: IncomingMessage) => void {
  let lastServer: WatchedServer | undefined
  return function watchRequestServer(req) {
    // `server` is set by Node's net module on every accepted socket (checked on Node 20).
    const server = (req.socket as { server?: WatchedServer } | null)?.server
    if (server === lastServer) return
    lastServer = server
    recorder.watchServer(server)
  }
}
