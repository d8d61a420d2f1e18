/**
 * Starts the benchmark's Node children (servers and load generator) pinned
 * to one core with `taskset`, and talks to them over IPC. Pinning at exec
 * time means every thread of the child (libuv pool, V8 GC helpers) stays on
 * that core.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import type { LoadRequest, LoadResult } from '../load'
import type { Framework, ServerCommand, ServerMessage, ServerStats, Variant } from './variants'

export const BENCH_DIR = join(__dirname, '..')
export const REPO_DIR = join(BENCH_DIR, '..')

/** Starts `node --import tsx <script>` on one core, with an IPC channel. */
export function spawnPinnedNode(
  core: number,
  script: string,
  args: string[],
  nodeFlags: string[] = [],
): ChildProcess {
  const command = [process.execPath, ...nodeFlags, '--import', 'tsx', script, ...args]
  return spawn('taskset', ['-c', String(core), ...command], {
    cwd: REPO_DIR,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
}

/**
 * Resolves with the child's next IPC message that passes `accept`.
 * Rejects if the child exits first or the time runs out.
 */
export function nextMessage<T>(
  child: ChildProcess,
  accept: (message: unknown) => message is T,
  timeoutMs: number,
  description: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => {
      if (!accept(message)) return
      cleanup()
      resolve(message)
    }
    const onExit = (code: number | null, signal: string | null) => {
      cleanup()
      const status = `code ${code}, signal ${signal}`
      reject(new Error(`${description} failed: child ${child.pid} exited (${status}) first`))
    }
    const timer = setTimeout(() => {
      cleanup()
      const waited = `no message from child ${child.pid} in ${timeoutMs} ms`
      reject(new Error(`${description} timed out: ${waited}`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

function isServerMessage<K extends ServerMessage['type']>(type: K) {
  return (message: unknown): message is Extract<ServerMessage, { type: K }> =>
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === type
}

/** A running server child (bench/server.ts). */
export class ServerChild {
  readonly framework: Framework
  readonly variant: Variant
  readonly process: ChildProcess
  port = 0

  constructor(
    framework: Framework,
    variant: Variant,
    redisUrl: string,
    core: number,
    nodeFlags: string[] = [],
  ) {
    this.framework = framework
    this.variant = variant
    const script = join(BENCH_DIR, 'server.ts')
    this.process = spawnPinnedNode(core, script, [framework, variant, redisUrl], nodeFlags)
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`
  }

  async ready(): Promise<void> {
    const isReady = isServerMessage('ready')
    const message = await nextMessage(this.process, isReady, 30_000, this.#describe('start'))
    this.port = message.port
  }

  async stats(): Promise<ServerStats> {
    const isStats = isServerMessage('stats')
    const reply = nextMessage(this.process, isStats, 5_000, this.#describe('stats'))
    this.#send({ type: 'stats' })
    const { type: _type, ...stats } = await reply
    return stats
  }

  /** Makes the server delay its next response, so that the request's active record can be read. */
  async holdNext(): Promise<void> {
    const isHeld = isServerMessage('held')
    const reply = nextMessage(this.process, isHeld, 5_000, this.#describe('hold-next'))
    this.#send({ type: 'hold-next' })
    await reply
  }

  /** Closes the server (web-top flushes its tracker) and waits for the process to exit. */
  async close(): Promise<void> {
    if (this.process.exitCode !== null) return
    const exited = new Promise((resolve) => this.process.once('exit', resolve))
    const isClosed = isServerMessage('closed')
    const reply = nextMessage(this.process, isClosed, 15_000, this.#describe('close'))
    this.#send({ type: 'close' })
    await reply
    await exited
  }

  #send(command: ServerCommand): void {
    this.process.send(command)
  }

  #describe(step: string): string {
    return `${this.framework} ${this.variant} server ${step}`
  }
}

type LoadReply = { ok: true; result: LoadResult } | { ok: false; message: string }

function isLoadReply(message: unknown): message is LoadReply {
  return typeof message === 'object' && message !== null && 'ok' in message
}

function isLoadReady(message: unknown): message is { ready: true } {
  return typeof message === 'object' && message !== null && 'ready' in message
}

/** An autocannon child (bench/load.ts) that runs one load test. */
export class LoadChild {
  readonly process: ChildProcess
  readonly #exited: Promise<unknown>

  private constructor(child: ChildProcess) {
    this.process = child
    this.#exited = new Promise((resolve) => child.once('exit', resolve))
  }

  /** Starts the child on `core` and waits until it has loaded. */
  static async start(core: number): Promise<LoadChild> {
    const child = spawnPinnedNode(core, join(BENCH_DIR, 'load.ts'), [])
    await nextMessage(child, isLoadReady, 30_000, 'load generator start')
    return new LoadChild(child)
  }

  async run(request: LoadRequest): Promise<LoadResult> {
    const timeoutMs = request.durationSeconds * 1000 + 30_000
    const reply = nextMessage(this.process, isLoadReply, timeoutMs, 'load generator')
    this.process.send(request)

    const message = await reply
    await this.#exited
    if (!message.ok) {
      throw new Error(`load generator failed against ${request.url}: ${message.message}`)
    }
    return message.result
  }
}
