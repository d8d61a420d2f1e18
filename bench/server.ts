/**
 * One benchmark server, started by bench/run.ts as a child process: an
 * Express 5 or Fastify 5 app with a hello-world JSON route at `/` and one
 * add-on. It reports its CPU time and request count over IPC.
 *
 * Usage: server.ts <express|fastify> <variant> <redis-url>
 */
import express from 'express'
import promBundle from 'express-prom-bundle'
import Fastify from 'fastify'
import fastifyMetrics from 'fastify-metrics'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import pinoHttp from 'pino-http'
import { topMiddleware, topPlugin, type Recorder } from '../src/index'
import {
  isFramework,
  isVariant,
  type Framework,
  type ServerCommand,
  type ServerMessage,
  type Variant,
} from './lib/variants'

/** Delay of the response to the first request after a `hold-next` command, in milliseconds. */
const HOLD_MS = 300

const HELLO = { hello: 'world' }

/** web-top's options in every web-top variant: the batch window that bench/run.ts passes, if any. */
const TOP_OPTIONS =
  process.env.WEB_TOP_BENCH_BATCH_WINDOW_MS === undefined
    ? {}
    : { batchWindowMs: Number(process.env.WEB_TOP_BENCH_BATCH_WINDOW_MS) }

interface BenchServer {
  port: number
  recorder: Recorder | null
  close(): Promise<void>
}

let handled = 0
let holdNextRequest = false

async function main(): Promise<void> {
  const [framework, variant, redisUrl] = process.argv.slice(2)
  if (!isFramework(framework) || !isVariant(variant) || redisUrl === undefined) {
    const got = process.argv.slice(2).join(' ')
    const usage = '<express|fastify> <variant> <redis-url>'
    throw new Error(`invalid arguments ${JSON.stringify(got)}: use ${usage}`)
  }
  if (process.send === undefined) {
    throw new Error('server.ts needs an IPC channel: start it through bench/run.ts or bench/profile.ts')
  }

  const server = await startServer(framework, variant, redisUrl)
  process.on('message', (command: ServerCommand) => void handleCommand(command, server))
  process.on('disconnect', () => process.exit(1))
  send({ type: 'ready', port: server.port })
}

function startServer(
  framework: Framework,
  variant: Variant,
  redisUrl: string,
): Promise<BenchServer> {
  return framework === 'express' ? startExpress(variant, redisUrl) : startFastify(variant, redisUrl)
}

async function handleCommand(command: ServerCommand, server: BenchServer): Promise<void> {
  if (command.type === 'stats') {
    const cpu = process.cpuUsage()
    const tracker = server.recorder?.tracker.stats() ?? null
    const monotonicMicros = Number(process.hrtime.bigint() / 1000n)
    send({
      type: 'stats',
      cpuMicros: cpu.user + cpu.system,
      systemCpuMicros: cpu.system,
      monotonicMicros,
      handled,
      tracker,
    })
  } else if (command.type === 'hold-next') {
    holdNextRequest = true
    send({ type: 'held' })
  } else {
    await server.close()
    // `node --cpu-prof` writes its profile on process.exit() too.
    send({ type: 'closed' }, () => process.exit(0))
  }
}

function send(message: ServerMessage, onSent?: () => void): void {
  process.send?.(message, undefined, undefined, onSent)
}

/** Counts the request and returns how long to wait before sending its response, in milliseconds. */
function countRequest(): number {
  handled++
  if (!holdNextRequest) return 0
  holdNextRequest = false
  return HOLD_MS
}

async function startExpress(variant: Variant, redisUrl: string): Promise<BenchServer> {
  const app = express()
  let recorder: Recorder | null = null
  let closeAddOn = async () => {}

  if (variant === 'web-top-redis' || variant === 'web-top-memory') {
    const trackerUrl = variant === 'web-top-redis' ? redisUrl : 'memory://'
    const middleware = topMiddleware({ ...TOP_OPTIONS, trackerUrl })
    app.use(middleware)
    recorder = middleware.recorder
    closeAddOn = () => middleware.close()
  } else if (variant === 'logger') {
    app.use(pinoHttp({}, pino.destination('/dev/null')))
  } else if (variant === 'metrics') {
    app.use(promBundle({ includeMethod: true, includePath: true }))
  }

  app.get('/', (_req, res) => {
    const delayMs = countRequest()
    if (delayMs === 0) res.json(HELLO)
    else setTimeout(() => res.json(HELLO), delayMs)
  })

  const server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    recorder,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await closeAddOn()
    },
  }
}

async function startFastify(variant: Variant, redisUrl: string): Promise<BenchServer> {
  const logger = variant === 'logger' ? { level: 'info', file: '/dev/null' } : false
  const app = Fastify({ logger })

  if (variant === 'web-top-redis' || variant === 'web-top-memory') {
    const trackerUrl = variant === 'web-top-redis' ? redisUrl : 'memory://'
    await app.register(topPlugin, { ...TOP_OPTIONS, trackerUrl })
  } else if (variant === 'metrics') {
    await app.register(fastifyMetrics, { endpoint: '/metrics' })
  }

  app.get('/', async () => {
    const delayMs = countRequest()
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
    return HELLO
  })

  await app.listen({ port: 0, host: '127.0.0.1' })
  const recorder = variant === 'web-top-redis' || variant === 'web-top-memory' ? app.webTop : null
  return {
    port: (app.server.address() as AddressInfo).port,
    recorder,
    close: () => app.close(),
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
