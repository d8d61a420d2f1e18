/**
 * Hand-written HTTP/1.1 over a plain TCP socket, for the cases a client
 * library hides: several requests pipelined in one write, keep-alive, a
 * request sent in part, and a connection destroyed at a chosen moment.
 */
import { connect, type Socket } from 'node:net'

export interface RawResponse {
  status: number
  /** Header names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>
  body: string
}

export interface ReadOptions {
  /** Per response, in order: true when it has no body whatever its headers state (HEAD). */
  bodiless?: boolean[]
  timeoutMs?: number
}

/** A connected socket that collects what the server sends. */
export interface RawConnection {
  socket: Socket
  /** Sends bytes as they are. */
  write(text: string): void
  /** Resolves with the next `count` responses. */
  readResponses(count: number, options?: ReadOptions): Promise<RawResponse[]>
  /** Resolves with everything received once it contains `text`, such as a first chunk. */
  waitForText(text: string, timeoutMs?: number): Promise<string>
  /** Destroys the socket at once (a TCP reset when unread data remains). */
  destroy(): void
  /** Resolves when the server closes the connection. */
  closed: Promise<void>
}

/** Opens a TCP connection to a loopback port. */
export function openConnection(port: number, host = '127.0.0.1'): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host)
    let received = Buffer.alloc(0)
    let consumed = 0
    const waiters = new Set<() => void>()
    const closed = new Promise<void>((done) => socket.once('close', () => done()))

    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      for (const wake of waiters) wake()
    })
    socket.on('close', () => {
      for (const wake of waiters) wake()
    })
    socket.on('error', () => {})
    const describeReceived = () => JSON.stringify(received.toString('latin1'))
    socket.once('connect', () => resolve(connection))
    socket.once('error', reject)

    const waitUntil = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
      new Promise((done, fail) => {
        const attempt = () => {
          const value = check()
          if (value !== undefined) {
            finish()
            done(value)
          } else if (socket.destroyed) {
            finish()
            fail(new Error(`connection closed while waiting for ${what} (received ${describeReceived()})`))
          }
        }
        const timer = setTimeout(() => {
          finish()
          fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (received ${describeReceived()})`))
        }, timeoutMs)
        const finish = () => {
          clearTimeout(timer)
          waiters.delete(attempt)
        }
        waiters.add(attempt)
        attempt()
      })

    const connection: RawConnection = {
      socket,
      closed,
      write: (text) => socket.write(text),
      destroy: () => socket.destroy(),
      waitForText: (text, timeoutMs = 5_000) =>
        waitUntil(
          () => (received.includes(text, 0, 'latin1') ? received.toString('latin1') : undefined),
          timeoutMs,
          JSON.stringify(text),
        ),
      readResponses: async (count, options = {}) => {
        const responses: RawResponse[] = []
        for (let i = 0; i < count; i++) {
          const bodiless = options.bodiless?.[i] ?? false
          const parsed = await waitUntil(
            () => parseResponse(received, consumed, bodiless),
            options.timeoutMs ?? 5_000,
            `response ${i + 1} of ${count}`,
          )
          consumed = parsed.end
          responses.push(parsed.response)
        }
        return responses
      },
    }
  })
}

/** Formats a GET (or other bodiless) request with `Host` and any extra header lines. */
export function formatRequest(method: string, path: string, headers: string[] = []): string {
  return [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers, '', ''].join('\r\n')
}

/** Parses one response that starts at `offset`, or returns undefined while it is incomplete. */
function parseResponse(
  data: Buffer,
  offset: number,
  bodiless: boolean,
): { response: RawResponse; end: number } | undefined {
  const headEnd = data.indexOf('\r\n\r\n', offset, 'latin1')
  if (headEnd === -1) return undefined

  const [statusLine = '', ...headerLines] = data.subarray(offset, headEnd).toString('latin1').split('\r\n')
  const status = Number(statusLine.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }

  const bodyStart = headEnd + 4
  if (bodiless || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { response: { status, headers, body: '' }, end: bodyStart }
  }
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    return parseChunkedBody(data, bodyStart, status, headers)
  }

  const length = Number(headers['content-length'] ?? 0)
  if (data.length < bodyStart + length) return undefined
  const body = data.subarray(bodyStart, bodyStart + length).toString('utf8')
  return { response: { status, headers, body }, end: bodyStart + length }
}

function parseChunkedBody(
  data: Buffer,
  start: number,
  status: number,
  headers: Record<string, string>,
): { response: RawResponse; end: number } | undefined {
  const parts: Buffer[] = []
  let position = start
  for (;;) {
    const lineEnd = data.indexOf('\r\n', position, 'latin1')
    if (lineEnd === -1) return undefined
    const size = Number.parseInt(data.subarray(position, lineEnd).toString('latin1'), 16)
    if (size === 0) {
      const trailerEnd = data.indexOf('\r\n\r\n', lineEnd, 'latin1')
      if (trailerEnd === -1) return undefined
      const body = Buffer.concat(parts).toString('utf8')
      return { response: { status, headers, body }, end: trailerEnd + 4 }
    }
    if (data.length < lineEnd + 2 + size + 2) return undefined
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
    position = lineEnd + 2 + size + 2
  }
}
