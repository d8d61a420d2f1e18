/**
 * Starts app-process-main.ts in a child process, so that a test can send
 * it signals, watch it exit, and measure its heap and RSS apart from the
 * test runner's.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import type { TopOptions, TrackerStats } from '../../src/index'

/** Messages the parent sends. */
export type AppCommand =
  | { type: 'stats' }
  | { type: 'release' }
  | { type: 'close-server' }
  | { type: 'quit-client' }
  | { type: 'disconnect-client' }

/** Messages the child sends. */
export type AppMessage =
  | { type: 'ready'; port: number; processorIdPrefix: string }
  | {
      type: 'stats'
      /** After a full garbage collection. */
      heapUsedBytes: number
      rssBytes: number
      externalBytes: number
      tracker: TrackerStats
    }

export type AppStats = Extract<AppMessage, { type: 'stats' }>

export interface AppProcessOptions {
  framework: 'express5' | 'express4' | 'fastify5' | 'fastify4'
  topOptions: TopOptions
  /** `close-server`: the app handles SIGTERM itself by closing its server. */
  signalHandler?: 'close-server'
  /** The app also loads this version of the signal-exit package, with an exit handler. */
  signalExit?: 'v4' | 'v3'
  /**
   * The app opens an ioredis client on `topOptions.trackerUrl` itself and
   * passes it as the `redis` option, for `quitClient()` and `disconnectClient()`.
   */
  givenClient?: boolean
}

export interface ExitResult {
  code: number | null
  signal: NodeJS.Signals | null
  /** Time from the call of `exited()` to the exit. */
  elapsedMs: number
}

export interface AppProcess {
  child: ChildProcess
  pid: number
  port: number
  url: string
  processorIdPrefix: string
  /** Everything the child wrote to stdout and stderr so far. */
  output(): string
  stats(): Promise<AppStats>
  release(): void
  closeServer(): void
  /** Calls `quit()` on the client of `givenClient`, as an app's own shutdown does. */
  quitClient(): void
  /** Calls `disconnect()` on the client of `givenClient`. */
  disconnectClient(): void
  /** Resolves with the exit code and signal, or rejects after `timeoutMs` (and kills the child). */
  exited(timeoutMs: number): Promise<ExitResult>
  kill(signal?: NodeJS.Signals): void
}

const MAIN = join(__dirname, 'app-process-main.ts')

/**
 * Starts the child and waits for it to listen. `onSpawn` runs with the
 * child's pid before the child has loaded any code.
 */
export async function startAppProcess(
  options: AppProcessOptions,
  onSpawn?: (pid: number) => Promise<void>,
): Promise<AppProcess> {
  const child = fork(MAIN, [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: {
      ...process.env,
      WEB_TOP_TEST_FRAMEWORK: options.framework,
      WEB_TOP_TEST_OPTIONS: JSON.stringify(options.topOptions),
      WEB_TOP_TEST_SIGNAL_HANDLER: options.signalHandler ?? '',
      WEB_TOP_TEST_SIGNAL_EXIT: options.signalExit ?? '',
      WEB_TOP_TEST_GIVEN_CLIENT: options.givenClient === true ? '1' : '',
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  )

  if (onSpawn !== undefined && child.pid !== undefined) await onSpawn(child.pid)
  const ready = await new Promise<Extract<AppMessage, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`the app did not start within 20 s: ${output}`))
    }, 20_000)
    child.on('message', (message: AppMessage) => {
      if (message.type !== 'ready') return
      clearTimeout(timer)
      resolve(message)
    })
    void exit.then(({ code }) => {
      reject(new Error(`the app exited with ${code} before it was ready: ${output}`))
    })
  })

  const waiting = new Set<(stats: AppStats) => void>()
  child.on('message', (message: AppMessage) => {
    if (message.type !== 'stats') return
    for (const resolve of waiting) resolve(message)
    waiting.clear()
  })

  return {
    child,
    pid: child.pid as number,
    port: ready.port,
    url: `http://127.0.0.1:${ready.port}`,
    processorIdPrefix: ready.processorIdPrefix,
    output: () => output,
    stats: () =>
      new Promise((resolve) => {
        waiting.add(resolve)
        child.send({ type: 'stats' } satisfies AppCommand)
      }),
    release: () => child.send({ type: 'release' } satisfies AppCommand),
    closeServer: () => child.send({ type: 'close-server' } satisfies AppCommand),
    quitClient: () => child.send({ type: 'quit-client' } satisfies AppCommand),
    disconnectClient: () => child.send({ type: 'disconnect-client' } satisfies AppCommand),
    exited: async (timeoutMs) => {
      const sentAt = Date.now()
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL')
          reject(new Error(`the app did not exit within ${timeoutMs} ms: ${output}`))
        }, timeoutMs)
      })
      try {
        const { code, signal, at } = await Promise.race([exit, timeout])
        return { code, signal, elapsedMs: at - sentAt }
      } finally {
        clearTimeout(timer)
      }
    },
    kill: (signal = 'SIGTERM') => child.kill(signal),
  }
}
