/**
 * Starts an example app from the command line: the port from `PORT` or
 * `--port`, and with `WORKERS=N` or `--workers N` that many processes that
 * share the port through `node:cluster`. Stops cleanly on SIGINT and SIGTERM.
 */
import cluster from 'node:cluster'
import { parseArgs } from 'node:util'

/** A started app, as the runner stops it. */
export interface RunningApp {
  /** Stops accepting requests, waits for those in flight and ends the process's active tasks. */
  close(): Promise<void>
  /**
   * Closes every connection, busy ones included, so that a `close()` that
   * waits for clients still sending requests on keep-alive connections can
   * end. An app whose `close()` ends such connections itself (Fastify's)
   * leaves it out.
   */
  closeConnections?(): void
}

export interface ExampleDefinition {
  /** Name used in log lines, such as `express example`. */
  name: string
  defaultPort: number
  /** Starts the app listening on `host:port`. */
  start(port: number, host: string): Promise<RunningApp>
}

const HOST = '127.0.0.1'

/** Wait for requests in flight after a stop signal before their connections are closed, in milliseconds. */
const CLOSE_CONNECTIONS_AFTER_MS = 4_000

/**
 * Wait after a stop signal before the process exits whatever is left, in
 * milliseconds. It leaves `close()` time to end the tasks of the requests
 * cut at `CLOSE_CONNECTIONS_AFTER_MS` and to send the last records, which
 * takes up to 2 s with Redis unreachable.
 */
const SHUTDOWN_TIMEOUT_MS = 10_000

export async function runExample(example: ExampleDefinition): Promise<void> {
  const { port, workers } = readSettings(example.defaultPort)

  if (workers > 1 && cluster.isPrimary) {
    startPrimary(example, port, workers)
    return
  }
  await startServer(example, port)
}

function readSettings(defaultPort: number): { port: number; workers: number } {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, workers: { type: 'string' } },
    strict: true,
  })
  return {
    port: parseWholeNumber('port', values.port ?? process.env.PORT ?? String(defaultPort), 0, 65_535),
    workers: parseWholeNumber('workers', values.workers ?? process.env.WORKERS ?? '1', 1, 64),
  }
}

function parseWholeNumber(name: string, text: string, min: number, max: number): number {
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < min || value > max) {
    console.error(`Invalid ${name} ${JSON.stringify(text)}: expected a whole number from ${min} to ${max}.`)
    process.exit(2)
  }
  return value
}

function startPrimary(example: ExampleDefinition, port: number, workers: number): void {
  let stopping = false
  console.log(`${example.name}: primary ${process.pid} starting ${workers} workers on http://${HOST}:${port}`)
  for (let i = 0; i < workers; i++) cluster.fork()

  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`${example.name}: worker ${worker.process.pid} exited (code ${code}, signal ${signal})`)
    }
    if (Object.keys(cluster.workers ?? {}).length > 0) return
    console.log(`${example.name}: primary ${process.pid} stopped`)
    process.exit(stopping ? 0 : 1)
  })

  // Ctrl-C reaches the workers too; SIGTERM may reach only the primary, so it is passed on.
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

async function startServer(example: ExampleDefinition, port: number): Promise<void> {
  const app = await example.start(port, HOST)
  const role = cluster.isWorker ? 'worker' : 'process'
  console.log(
    `${example.name}: ${role} ${process.pid} listening on http://${HOST}:${port} ` +
      `(tracker ${describeTrackerUrl(process.env.TOP_TRACKER_URL)})`,
  )

  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    // Clients on keep-alive connections may keep sending requests, and
    // close() waits for them. Their requests are then recorded as aborted.
    setTimeout(() => app.closeConnections?.(), CLOSE_CONNECTIONS_AFTER_MS).unref()
    setTimeout(() => {
      console.error(`${example.name}: ${role} ${process.pid} stopped before its requests finished`)
      process.exit(1)
    }, SHUTDOWN_TIMEOUT_MS).unref()
    app.close().then(
      () => {
        console.log(`${example.name}: ${role} ${process.pid} stopped`)
        process.exit(0)
      },
      (err: unknown) => {
        console.error(`${example.name}: ${role} ${process.pid} failed to stop:`, err)
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

/** Returns the tracker URL with any password masked, or the package default when unset. */
function describeTrackerUrl(url: string | undefined): string {
  if (url === undefined || url === '') return 'redis://127.0.0.1:6379, the default'
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'an invalid URL'
  }
}
