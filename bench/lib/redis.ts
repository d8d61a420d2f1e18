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

/**
 * Counts the task records published on a channel: records whose `ended_at`
 * is a string (end events) and records whose `ended_at` is null (starts).
 *
 * It scans the raw RESP stream of a plain socket instead of parsing each
 * message with a Redis client, because it shares a core with the load
 * generator and Redis. A quote inside a JSON string is escaped as `\"`,
 * so the bytes `"ended_at":` occur only as the record's own key.
 */
export class PublishedRecordCounter {
  ended = 0
  started = 0
  readonly #socket: Socket
  #tail: Buffer = Buffer.alloc(0)

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
    const data = this.#tail.length === 0 ? chunk : Buffer.concat([this.#tail, chunk])
    let from = 0

    for (;;) {
      const at = data.indexOf(ENDED_AT_KEY, from)
      if (at === -1) break
      const next = at + ENDED_AT_KEY.length
      if (next >= data.length) break // the value starts in the next chunk

      if (data[next] === QUOTE) this.ended++
      else if (data[next] === LETTER_N) this.started++
      from = next
    }
    // Keep the bytes that may start a key cut in two by the chunk boundary.
    this.#tail = Buffer.from(data.subarray(Math.max(from, data.length - ENDED_AT_KEY.length)))
  }
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
