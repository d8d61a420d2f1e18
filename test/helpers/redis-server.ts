/**
 * Starts a private `redis-server` on a free loopback port, so a test can
 * stop, pause and restart it without touching any other Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, Socket } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import type { HttpTask } from '../../src/task/http-task'
import { decodeTask } from '../../src/task/wire'

export interface TestRedis {
  port: number
  url: string
  /** A client for the test's own checks. */
  client: Redis
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>
  /** Starts the server again on the same port. */
  start(): Promise<void>
  /** Freezes the server process (SIGSTOP): connections stay open, nothing is answered. */
  freeze(): void
  /** Resumes a frozen server (SIGCONT). */
  thaw(): void
  /** Stops the server for good and removes its folder. */
  close(): Promise<void>
  /**
   * Waits until `client` is the only connection, then deletes every key.
   * An app that gave up on a frozen Redis leaves its last writes in the
   * server's socket buffer, and the thawed server runs them before it reads
   * the connection close. A FLUSHALL sent before that close could run
   * first, and the next test would find the records of the last one.
   */
  reset(): Promise<void>
}

export async function startRedis(extraArgs: string[] = []): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'web-top-redis-'))
  const port = await findFreePort()
  let child: ChildProcess | undefined

  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    )
    await waitForPort(port, 10_000)
  }
  const stop = async () => {
    const running = child
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGTERM')
    await exited
  }

  await start()
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 3 })
  client.on('error', () => {})

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    stop,
    start,
    freeze: () => child?.kill('SIGSTOP'),
    thaw: () => child?.kill('SIGCONT'),
    close: async () => {
      client.disconnect()
      child?.kill('SIGCONT')
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
    reset: async () => {
      let others: string[] = []
      await waitUntil('the connections of earlier tests to close', 15_000, async () => {
        const ownId = String(await client.client('ID'))
        const list = (await client.client('LIST')) as string
        others = list.trim().split('\n').filter((line) => !line.startsWith(`id=${ownId} `))
        return others.length === 0
      }).catch((err: unknown) => {
        throw new Error(`${String(err)}; still connected: ${others.join(' | ')}`, { cause: err })
      })
      await client.flushall()
    },
  }
}

/** Tasks as stored in Redis, read directly with HGETALL and LRANGE. */
export interface StoredTasks {
  /** The `processors` hash: processor id to active task. */
  processors: Record<string, HttpTask>
  /** The `past_tasks` list, most recent first. */
  pastTasks: HttpTask[]
}

/**
 * Reads `processors` and `past_tasks` without going through a tracker, and
 * decodes every record with `decodeTask`. Throws on a record that does not
 * decode, naming it.
 */
export async function readStoredTasks(client: Redis, keyPrefix = ''): Promise<StoredTasks> {
  const hash = await client.hgetall(`${keyPrefix}processors`)
  const list = await client.lrange(`${keyPrefix}past_tasks`, 0, -1)

  const processors: Record<string, HttpTask> = {}
  for (const [processorId, text] of Object.entries(hash)) {
    processors[processorId] = decodeOrThrow(text, `processors field ${processorId}`)
  }
  const pastTasks = list.map((text, index) => decodeOrThrow(text, `past_tasks item ${index}`))
  return { processors, pastTasks }
}

function decodeOrThrow(text: string, where: string): HttpTask {
  const result = decodeTask(text)
  if (!result.ok) throw new Error(`${where} does not decode (${result.reason}): ${text.slice(0, 200)}`)
  return result.task
}

export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await canConnect(port)) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`redis-server did not accept connections on 127.0.0.1:${port} within ${timeoutMs} ms`)
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

/** Resolves once `check` resolves to true; rejects after `timeoutMs` naming the last error. */
export async function waitUntil(description: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (error) {
      lastError = error
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${reason}`)
}
