/**
 * A load at a fixed request rate, for the latency a server shows below
 * saturation. autocannon keeps every connection busy, so the server is
 * always saturated and latency grows with the server's CPU per request.
 * With 50 connections, a server that spends 1.5 times as much CPU per
 * request responds 1.5 times later on average, even when no single
 * request waits for the add-on. autocannon's `overallRate` option sent
 * requests in bursts on this machine (bench/scaling.ts).
 *
 * Here each request goes out when it is due, checked every millisecond,
 * on an idle keep-alive connection. Requests are GETs with a fixed header
 * block, written as raw bytes, and responses are read up to their
 * `Content-Length`, so that the load costs the generator's core far less
 * than Node's HTTP client would. A request's latency runs from its write
 * to the end of its response. A request that finds every connection busy
 * waits in a queue, and its latency starts when it was due, so a stalled
 * server is not hidden by the generator waiting for it.
 */
import { connect, type Socket } from 'node:net'

export interface PacedLoadOptions {
  url: string
  /** Requests per second. */
  rate: number
  durationSeconds: number
  connections: number
  headers: Readonly<Record<string, string>>
}

export interface PacedLoadResult {
  /** Latencies of 2xx responses, in milliseconds, ascending. */
  latencies: Float64Array
  responses: number
  non2xx: number
  errors: number
  /** Requests that waited for a free connection. */
  queued: number
  /** Requests still unanswered when the run ended, counted as timeouts. */
  unanswered: number
}

/** Time the run waits after its last request for the responses still on the way, in milliseconds. */
const FINAL_WAIT_MS = 2_000

const HEADER_END = '\r\n\r\n'
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i

class Connection {
  readonly socket: Socket
  /** Start of the latency of the request in flight, or -1 when idle. */
  startedAt = -1
  #received = ''

  constructor(socket: Socket) {
    this.socket = socket
  }

  /**
   * Adds received bytes. Returns the status code once the whole response
   * is in, or 0 while more is to come.
   */
  receive(chunk: string): number {
    this.#received += chunk
    const headerEnd = this.#received.indexOf(HEADER_END)
    if (headerEnd === -1) return 0
    const head = this.#received.slice(0, headerEnd + 2)
    const length = CONTENT_LENGTH.exec(head)
    if (length === null) {
      const start = JSON.stringify(head.slice(0, 200))
    throw new Error(`invalid response: no Content-Length header, the paced load reads only those: ${start}`)
    }
    const bodyEnd = headerEnd + HEADER_END.length + Number(length[1])
    if (this.#received.length < bodyEnd) return 0
    this.#received = this.#received.slice(bodyEnd)
    return Number(head.slice(9, 12))
  }
}

/** Sends requests at `rate` per second for `durationSeconds` and records their latencies. */
export async function runPacedLoad(options: PacedLoadOptions): Promise<PacedLoadResult> {
  const target = new URL(options.url)
  const port = Number(target.port)
  const headerLines = Object.entries(options.headers).map(([name, value]) => `${name}: ${value}\r\n`)
  const request = Buffer.from(
    `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n${headerLines.join('')}\r\n`,
    'latin1',
  )

  const latencies: number[] = []
  const idle: Connection[] = []
  const all = new Set<Connection>()
  const waiting: number[] = []
  let responses = 0
  let non2xx = 0
  let errors = 0
  let queued = 0
  let inFlight = 0

  const send = (connection: Connection, startedAt: number) => {
    connection.startedAt = startedAt
    inFlight++
    connection.socket.write(request)
  }

  const open = (): Promise<Connection> =>
    new Promise((resolve, reject) => {
      const socket = connect({ host: target.hostname, port, noDelay: true })
      const connection = new Connection(socket)
      all.add(connection)
      socket.setEncoding('latin1')
      socket.once('connect', () => {
        // A connection reopened while the run ended is not needed.
        if (stopped) socket.destroy()
        resolve(connection)
      })
      // An error before the connection is up fails the open; a later one is
      // followed by `close`, which counts it.
      socket.on('error', reject)
      socket.on('data', (chunk: string) => {
        let status: number
        try {
          status = connection.receive(chunk)
        } catch {
          errors++
          socket.destroy()
          return
        }
        if (status === 0) return
        const latency = performance.now() - connection.startedAt
        connection.startedAt = -1
        inFlight--
        responses++
        if (status >= 200 && status < 300) latencies.push(latency)
        else non2xx++
        const next = waiting.shift()
        if (next === undefined) idle.push(connection)
        else send(connection, next)
      })
      socket.on('close', () => {
        if (connection.startedAt !== -1) {
          errors++
          inFlight--
        }
        all.delete(connection)
        const index = idle.indexOf(connection)
        if (index !== -1) idle.splice(index, 1)
        // The server closed an idle keep-alive connection: open a new one.
        if (!stopped) open().then((fresh) => idle.push(fresh), () => errors++)
      })
    })

  let stopped = false
  for (let i = 0; i < options.connections; i++) idle.push(await open())

  const total = Math.round(options.rate * options.durationSeconds)
  const startedAt = performance.now()
  let sent = 0
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      const due = Math.min(total, Math.floor(((now - startedAt) / 1000) * options.rate))
      for (; sent < due; sent++) {
        // FIFO, so every connection stays in use and no server keep-alive timeout closes it.
        const connection = idle.shift()
        if (connection !== undefined) {
          send(connection, performance.now())
        } else {
          queued++
          waiting.push(startedAt + (sent * 1000) / options.rate)
        }
      }
      if (sent < total) setTimeout(tick, 1)
      else resolve()
    }
    tick()
  })

  const deadline = performance.now() + FINAL_WAIT_MS
  while ((inFlight > 0 || waiting.length > 0) && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  stopped = true
  const unanswered = inFlight + waiting.length
  for (const connection of all) connection.socket.destroy()
  return {
    latencies: Float64Array.from(latencies).sort(),
    responses,
    non2xx,
    errors,
    queued,
    unanswered,
  }
}
