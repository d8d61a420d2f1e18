/**
 * In-process stand-ins for what an HTTP server hands web-top: a request
 * with the benchmark's browser headers, a response with the headers
 * Express 5 sends, and a tracker that drops every record.
 */
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { Tracker, TrackerStats } from '../../src/index'
import { BROWSER_HEADERS } from '../lib/headers'

/** Creates a `GET /` request from 127.0.0.1 with a Host header and the browser headers. */
export function makeRequest(): IncomingMessage {
  const socket = new Socket()
  Object.defineProperty(socket, 'remoteAddress', { value: '127.0.0.1' })
  const req = new IncomingMessage(socket)
  req.method = 'GET'
  req.url = '/'
  req.httpVersion = '1.1'

  const rawHeaders: string[] = []
  for (const [name, value] of Object.entries({ Host: '127.0.0.1:3000', ...BROWSER_HEADERS })) {
    rawHeaders.push(name, value)
    req.headers[name.toLowerCase()] = value
  }
  req.rawHeaders = rawHeaders
  return req
}

/** Creates a response with the headers Express 5 sends for `res.json()`, and writes its head. */
export function makeResponse(req: IncomingMessage): ServerResponse {
  const res = new ServerResponse(req)
  res.setHeader('X-Powered-By', 'Express')
  res.setHeader('Content-Type', 'application/json; charset=utf-8')
  res.setHeader('Content-Length', '17')
  res.setHeader('ETag', 'W/"11-IkjuL6CqqtmReFMfkkvwC0sKj04"')
  res.writeHead(200)
  return res
}

/** A tracker that drops every record, so that only the recorder's own work is timed. */
export class DroppingTracker implements Tracker {
  readonly kind = 'dropping'
  /** Characters of all records handed over, read so that no record is optimised away. */
  characters = 0

  recordStart(_processorId: string, taskJson: string): void {
    this.characters += taskJson.length
  }

  recordEnd(_processorId: string, taskJson: string): void {
    this.characters += taskJson.length
  }

  async removeProcessors(): Promise<number> {
    return 0
  }

  async read(): Promise<never> {
    throw new Error('DroppingTracker keeps no records to read')
  }

  async subscribe(): Promise<() => Promise<void>> {
    return async () => {}
  }

  async clear(): Promise<void> {}

  async flush(): Promise<void> {}

  stats(): TrackerStats {
    return { written: 0, dropped: 0, pendingBytes: 0 }
  }

  async close(): Promise<void> {}
}
