/**
 * The benchmark's own `redis-server` (pinned to one core, no persistence,
 * a free loopback port) and the probes the report reads from it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'

export interface BenchRedis {
  url: string
  port: number
  /** A client for the benchmark's own reads (INFO, HLEN, LLEN, LINDEX). */
  client: Redis
  close(): Promise<void>
}

/** The Redis that other programs on this machine may use; the benchmark never touches it. */
const SHARED_REDIS_PORT = 6379

export async function startRedis(core: number): Promise<BenchRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'web-top-bench-redis-'))
  const port = await findFreePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir]
  args.push('--save', '', '--appendonly', 'no')
  const child: ChildProcess = spawn('taskset', ['-c', String(core), 'redis-server', ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  await waitForPort(port, 10_000)

  const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    client,
    close: async () => {
      client.disconnect()
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Returns Redis's own CPU time (`used_cpu_user` + `used_cpu_sys` of `INFO cpu`), in seconds. */
export async function readRedisCpuSeconds(client: Redis): Promise<number> {
  const info = await client.info('cpu')
  return readInfoNumber(info, 'used_cpu_user') + readInfoNumber(info, 'used_cpu_sys')
}

export async function readRedisVersion(client: Redis): Promise<string> {
  const info = await client.info('server')
  return /^redis_version:(.+)$/m.exec(info)?.[1]?.trim() ?? 'unknown'
}

function readInfoNumber(info: string, field: string): number {
  const match = new RegExp(`^${field}:([0-9.]+)`, 'm').exec(info)
  if (match === null) throw new Error(`INFO has no ${field} field: ${info.slice(0, 200)}`)
  return Number(match[1])
}

const ENDED_AT_KEY = Buffer.from('"ended_at":')
const QUOTE = 0x22
const LETTER_N = 0x6e
const ASTERISK = 0x2a
const DOLLAR = 0x24
const COLON = 0x3a
const LETTER_M = 0x6d
const CR = 0x0d
/** Bytes of a new chunk joined to the unfinished message of the previous one. A longer message takes the whole chunk. */
const JOIN_BYTES = 16_384

/**
 * Counts the task records published on a channel: records whose `ended_at`
 * is a string (end events) and records whose `ended_at` is null (starts).
 *
 * It reads the raw RESP stream of a plain socket instead of parsing each
 * message with a Redis client, because it shares a core with the load
 * generator and Redis, and whatever it spends there the Redis-tracker
 * runs lose. It walks the stream by the RESP lengths, searches each
 * payload only up to its `"ended_at":` key and copies only the unfinished
 * message at the end of a chunk. A quote inside a JSON string is escaped
 * as `\"`, so the bytes `"ended_at":` occur only as a key.
 */
export class PublishedRecordCounter {
  ended = 0
  started = 0
  readonly #socket: Socket
  /** The start of a message that the last chunk cut off, or null. */
  #unfinished: Buffer | null = null

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => this.#scan(chunk))
  }

  static async subscribe(port: number, channel: string): Promise<PublishedRecordCounter> {
    const socket = new Socket()
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.connect(port, '127.0.0.1', () => {
        socket.off('error', reject)
        resolve()
      })
    })
    // Redis confirms the subscription before it sends any message, so the
    // first reply is the confirmation.
    const confirmed = new Promise((resolve) => socket.once('data', resolve))
    const counter = new PublishedRecordCounter(socket)
    socket.write(`*2\r\n$9\r\nSUBSCRIBE\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n`)
    await confirmed
    return counter
  }

  close(): void {
    this.#socket.destroy()
  }

  #scan(chunk: Buffer): void {
    let data = chunk
    let from = 0
    const unfinished = this.#unfinished
    if (unfinished !== null) {
      // Finish the cut message from the first bytes of the chunk, so that
      // the rest of the chunk is read where it lies.
      const joined = Buffer.concat([unfinished, chunk.subarray(0, JOIN_BYTES)])
      const end = this.#readMessage(joined, 0)
      if (end !== -1) {
        from = end - unfinished.length
      } else if (chunk.length <= JOIN_BYTES) {
        this.#unfinished = joined
        return
      } else {
        data = Buffer.concat([unfinished, chunk])
      }
    }

    while (from < data.length) {
      const end = this.#readMessage(data, from)
      if (end === -1) {
        this.#unfinished = Buffer.from(data.subarray(from))
        return
      }
      from = end
    }
    this.#unfinished = null
  }

  /**
   * Reads the RESP array at `at` (a message, or the confirmation of the
   * subscription), counts the record of a message and returns the offset
   * after the array, or -1 when `data` ends before the array does.
   */
  #readMessage(data: Buffer, at: number): number {
    if (data[at] !== ASTERISK) {
      throw new Error(`published record counter: expected a RESP array at byte ${at}, got byte ${String(data[at])}`)
    }
    let position = readLineEnd(data, at)
    if (position === -1) return -1
    const elements = readInteger(data, at + 1)
    let isMessage = false
    let payloadStart = -1

    for (let element = 0; element < elements; element++) {
      const type = data[position]
      const lineEnd = readLineEnd(data, position)
      if (lineEnd === -1) return -1
      if (type === COLON) {
        position = lineEnd
        continue
      }
      if (type !== DOLLAR) throw new Error(`published record counter: unexpected RESP type byte ${String(type)}`)
      const length = readInteger(data, position + 1)
      const next = lineEnd + length + 2
      if (next > data.length) return -1
      if (element === 0) isMessage = length === 7 && data[lineEnd] === LETTER_M
      payloadStart = lineEnd
      position = next
    }

    if (isMessage && payloadStart !== -1) {
      const key = data.indexOf(ENDED_AT_KEY, payloadStart)
      const value = key + ENDED_AT_KEY.length
      if (key !== -1 && value < position) {
        if (data[value] === QUOTE) this.ended++
        else if (data[value] === LETTER_N) this.started++
      }
    }
    return position
  }
}

/** Returns the offset after the CRLF that ends the line at `at`, or -1 when `data` ends first. */
function readLineEnd(data: Buffer, at: number): number {
  for (let i = at; i < data.length - 1; i++) {
    if (data[i] === CR) return i + 2
  }
  return -1
}

/** Reads the decimal number after a RESP type byte, up to its CR. */
function readInteger(data: Buffer, at: number): number {
  let value = 0
  for (let i = at; data[i] !== CR; i++) value = value * 10 + (data[i] as number) - 0x30
  return value
}

async function findFreePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const address = server.address()
        server.close(() => {
          if (typeof address === 'object' && address !== null) resolve(address.port)
          else reject(new Error('finding a free port failed: the server has no address'))
        })
      })
    })
    if (port !== SHARED_REDIS_PORT) return port
  }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await canConnect(port)) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(
    `redis-server timed out: no connection on 127.0.0.1:${port} within ${timeoutMs} ms`,
  )
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
    socket.connect(port, '127.0.0.1')
  })
}
