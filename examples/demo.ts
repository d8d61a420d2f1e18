/**
 * The demo behind `npm run demo`: starts the Express example app on a free
 * loopback port, sends it traffic, and shows the live view of the real CLI
 * in this terminal. It needs no Redis: the app records to the memory
 * tracker and serves it at /web-top with a random API key, which only the
 * CLI process receives, through its environment.
 *
 * With `TOP_TRACKER_URL` set (redis://…), the app records there instead
 * and the live view reads Redis, as `npx web-top-cli live` would from a
 * second terminal.
 *
 *   npm run demo                      # quit with q or Ctrl-C
 *   npm run demo -- --duration 10     # stop by itself after 10 s
 *
 * A reader that closes the pipe early (`npm run demo | head`) ends the demo
 * with exit code 0, as it ends the CLI's `live`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, statSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { createExpressApp } from './express-app'
import { maskUrl } from '../src/util/mask-url'
import { TRACKER_ENDPOINT_PATH } from './routes'
import { generateTraffic, type TrafficSummary } from './traffic-generator'

const ROOT = resolve(__dirname, '..')
const CLI_BIN = join(ROOT, 'bin', 'web-top-cli.js')
const CLI_BUILD = join(ROOT, 'dist', 'cli.js')

/** Traffic of the demo: enough slow requests that the active table is rarely empty. */
const DEMO_TRAFFIC = { concurrency: 8, ratePerSecond: 12, slowShare: 0.3 }

/** Exit codes of the live view that mean it was quit or stopped, not that it failed. */
const NORMAL_CLI_EXIT_CODES = new Set([0, 130, 143])

/** Aborted once standard output fails, so that the demo stops the live view and cleans up. */
const outputFailed = new AbortController()

async function main(): Promise<number> {
  watchStandardStreams()
  const durationSeconds = readDuration()
  const trackerUrl = process.env.TOP_TRACKER_URL || 'memory://'
  const recordsToMemory = trackerUrl.startsWith('memory')
  buildCliIfStale()

  const apiKey = randomBytes(24).toString('base64url')
  // Left to the recorder when set, so that its log line names TOP_TRACKER_URL as the source.
  const recordingOptions = recordsToMemory ? { trackerUrl } : {}
  const { app, recording } = createExpressApp({ recording: recordingOptions, trackerApiKey: apiKey })
  const server = await listenOnFreePort(app)
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const readerUrl = recordsToMemory ? `${origin}${TRACKER_ENDPOINT_PATH}` : trackerUrl

  printIntroduction(origin, recordsToMemory, trackerUrl)
  if (!recordsToMemory && process.stdout.isTTY) await sleep(3_000)

  const stopTraffic = new AbortController()
  const traffic = generateTraffic({ urls: [origin], signal: stopTraffic.signal, ...DEMO_TRAFFIC })
  const cliExit = outputFailed.signal.aborted ? { code: 0 } : await runLiveView(readerUrl, apiKey, durationSeconds)
  stopTraffic.abort()
  server.closeAllConnections()
  const summary = await traffic
  await recording.close()
  await new Promise((resolveClose) => server.close(resolveClose))

  printSummary(summary)
  const outputError = outputFailed.signal.reason as NodeJS.ErrnoException | undefined
  if (outputError !== undefined && outputError.code !== 'EPIPE') return 1
  return cliExit.code !== null && !NORMAL_CLI_EXIT_CODES.has(cliExit.code) ? cliExit.code : 0
}

/**
 * Listens for failures of standard output and standard error. Without a
 * listener, a write to a pipe whose reader has exited (EPIPE) can crash the
 * demo with a stack trace and exit code 1 (seen under the tsx command of
 * `npm run demo`). EPIPE stops the live view and ends the demo with code 0,
 * and any other error (ENOSPC on a full disk) with a message and code 1.
 * Node destroys the stream on the error, so later writes are discarded.
 */
function watchStandardStreams(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (outputFailed.signal.aborted) return
    if (error.code !== 'EPIPE') process.stderr.write(`demo: cannot write to standard output: ${error.message}\n`)
    outputFailed.abort(error)
  })
  // Standard error is where failures are reported, so its own failure cannot be reported.
  process.stderr.on('error', () => undefined)
}

function readDuration(): number | undefined {
  const { values } = parseArgs({ options: { duration: { type: 'string' } }, strict: true })
  if (values.duration === undefined) return undefined

  const seconds = Number(values.duration)
  if (!Number.isFinite(seconds) || seconds <= 0) {
    const received = JSON.stringify(values.duration)
    throw new RangeError(`Invalid --duration ${received}: expected a number of seconds above 0.`)
  }
  return seconds
}

/** Runs tsup when dist/cli.js is missing or older than a source file, so the demo shows the current CLI. */
function buildCliIfStale(): void {
  const inputs = ['src', 'package.json', 'tsup.config.ts'].map((input) => join(ROOT, input))
  const newestInputMs = Math.max(...inputs.map(newestMtimeMs))
  if (existsSync(CLI_BUILD) && statSync(CLI_BUILD).mtimeMs >= newestInputMs) return

  console.log('demo: building the CLI with tsup…')
  const build = spawnSync('npx', ['tsup'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  if (build.status !== 0) {
    throw new Error(`tsup failed with exit code ${build.status}; run npx tsup to see why`)
  }
}

function newestMtimeMs(path: string): number {
  const stats = statSync(path)
  if (!stats.isDirectory()) return stats.mtimeMs
  const entries = readdirSync(path).map((entry) => newestMtimeMs(join(path, entry)))
  return Math.max(stats.mtimeMs, ...entries)
}

function listenOnFreePort(app: ReturnType<typeof createExpressApp>['app']): Promise<Server> {
  return new Promise((resolveListen, reject) => {
    const server = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolveListen(server)))
  })
}

function printIntroduction(origin: string, recordsToMemory: boolean, trackerUrl: string): void {
  console.log(`demo: Express example app on ${origin}, with traffic from examples/traffic-generator.ts`)
  if (recordsToMemory) {
    console.log(`demo: it records to memory and serves the tasks at ${origin}${TRACKER_ENDPOINT_PATH}`)
  } else {
    const shownUrl = maskUrl(trackerUrl)
    // The app reads TOP_TRACKER_PREFIX too, so the reader needs the same one.
    const prefix = process.env.TOP_TRACKER_PREFIX ?? ''
    const prefixVariable = prefix === '' ? '' : ` TOP_TRACKER_PREFIX=${quoteForShell(prefix)}`
    console.log(`demo: it records to ${shownUrl} (TOP_TRACKER_URL)${prefix === '' ? '' : ` under the key prefix ${JSON.stringify(prefix)}`}`)
    console.log(
      `demo: in a second terminal, in this folder, run: TOP_TRACKER_URL=${shownUrl}${prefixVariable} npx web-top-cli live`,
    )
  }
  // Piped, the view prints frames and reads no keys, so only Ctrl-C stops it.
  const quit = process.stdout.isTTY ? 'press q or Ctrl-C to quit' : 'stop it with Ctrl-C'
  console.log(`demo: starting the live view; ${quit}`)
}

/** Runs the live view until it exits, for at most `durationSeconds` or until standard output fails. */
async function runLiveView(
  readerUrl: string,
  apiKey: string,
  durationSeconds: number | undefined,
): Promise<{ code: number | null }> {
  const cli = startLiveView(readerUrl, apiKey)
  const stopLiveView = () => cli.kill('SIGTERM')
  const stopTimer = durationSeconds === undefined ? undefined : setTimeout(stopLiveView, durationSeconds * 1000)
  outputFailed.signal.addEventListener('abort', stopLiveView)
  try {
    return await waitForExit(cli)
  } finally {
    clearTimeout(stopTimer)
    outputFailed.signal.removeEventListener('abort', stopLiveView)
  }
}

/** Spawns the real CLI on this terminal. Only the CLI gets the API key, through its environment. */
function startLiveView(readerUrl: string, apiKey: string): ChildProcess {
  const cli = spawn(process.execPath, [CLI_BIN, 'live', '--tracker-url', readerUrl, '--refresh-rate', '1'], {
    stdio: 'inherit',
    env: { ...process.env, TOP_WEB_API_KEY: apiKey },
  })

  // Ctrl-C reaches both processes when the terminal is not in raw mode: the
  // CLI quits on it, and the demo cleans up once the CLI has exited.
  process.on('SIGINT', () => {})
  // SIGHUP comes when the terminal closes: stop the CLI and clean up as on SIGTERM.
  process.on('SIGTERM', () => cli.kill('SIGTERM'))
  process.on('SIGHUP', () => cli.kill('SIGTERM'))
  process.on('exit', () => cli.kill('SIGTERM'))
  return cli
}

function waitForExit(child: ChildProcess): Promise<{ code: number | null }> {
  return new Promise((resolveExit, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => resolveExit({ code }))
  })
}

function printSummary(summary: TrafficSummary): void {
  const statuses = Object.entries(summary.byStatus)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, count]) => `${status === 'error' ? 'no response' : status}: ${count}`)
    .join(', ')
  console.log(`demo: sent ${summary.total} requests (${statuses || 'no responses'}); app stopped`)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms))
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  },
)

/** Quotes a value for a POSIX shell command line, when it needs quotes. */
function quoteForShell(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`
}
