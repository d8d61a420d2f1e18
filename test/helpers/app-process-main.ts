/**
 * A test app in a process of its own, started by app-process.ts. It serves
 * `GET /ok` (200 `ok`) and `GET /wait` (held until released), with web-top
 * mounted first, and replies to the parent's messages over IPC.
 *
 * Environment: WEB_TOP_TEST_FRAMEWORK (express5, express4, fastify5,
 * fastify4), WEB_TOP_TEST_OPTIONS (the TopOptions as JSON) and
 * WEB_TOP_TEST_SIGNAL_HANDLER (`close-server`: the app handles SIGTERM
 * itself by releasing held requests and closing its server; unset: no
 * handler of its own) and WEB_TOP_TEST_SIGNAL_EXIT (`v4` or `v3`: the
 * app also loads that version of the signal-exit package, as many
 * libraries do, and logs what its exit handler saw) and
 * WEB_TOP_TEST_GIVEN_CLIENT (`1`: the app opens an ioredis client on the
 * `trackerUrl` itself and passes it as the `redis` option).
 *
 * The IPC channel is unreferenced, so it never keeps the process alive:
 * the process exits as a real app would, once nothing else is open.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express5 from 'express'
import fastify5, { type FastifyInstance } from 'fastify'
import fastify4 from 'fastify4'
import Redis from 'ioredis'
import { onExit } from 'signal-exit'
import onExitV3 from 'signal-exit3'
import { topMiddleware, topPlugin, type Recorder, type TopOptions } from '../../src/index'
import { express4 } from './http'
import type { AppCommand, AppMessage } from './app-process'

const framework = process.env.WEB_TOP_TEST_FRAMEWORK ?? 'express5'
const givenClient = process.env.WEB_TOP_TEST_GIVEN_CLIENT === '1' ? openGivenClient() : undefined
const options = readOptions()
const held: Array<() => void> = []

interface RunningApp {
  port: number
  recorder: Recorder
  /** Closes the HTTP server only, as an app does on shutdown: no web-top call. */
  closeServer(): void
}

/** Opens the app's own Redis client on the `trackerUrl` of the options. */
function openGivenClient(): Redis {
  const { trackerUrl } = JSON.parse(process.env.WEB_TOP_TEST_OPTIONS ?? '{}') as TopOptions
  if (typeof trackerUrl !== 'string') throw new Error('WEB_TOP_TEST_GIVEN_CLIENT needs a trackerUrl string in the options')
  const client = new Redis(trackerUrl)
  client.on('error', (err: Error) => console.log(`app: redis client error: ${err.message}`))
  return client
}

/** Returns the TopOptions of the environment, with the app's own client in place of the URL when there is one. */
function readOptions(): TopOptions {
  const parsed = JSON.parse(process.env.WEB_TOP_TEST_OPTIONS ?? '{}') as TopOptions
  if (givenClient === undefined) return parsed
  const { trackerUrl: _url, ...rest } = parsed
  return { ...rest, redis: givenClient }
}

function send(message: AppMessage): void {
  process.send?.(message)
}

function releaseHeld(): void {
  for (const release of held.splice(0)) release()
}

async function startExpress(express: typeof express5): Promise<RunningApp> {
  const middleware = topMiddleware(options)
  const app = express()
  app.use(middleware)
  app.get('/ok', (_req, res) => {
    res.send('ok')
  })
  app.get('/wait', (_req, res) => {
    held.push(() => res.send('released'))
  })
  const server: Server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    recorder: middleware.recorder,
    closeServer: () => {
      server.close()
      server.closeIdleConnections()
    },
  }
}

async function startFastify(fastify: typeof fastify5): Promise<RunningApp> {
  const app: FastifyInstance = fastify({ logger: false })
  await app.register(topPlugin, options)
  app.get('/ok', async () => 'ok')
  app.get('/wait', (_request, reply) => {
    held.push(() => reply.send('released'))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as AddressInfo).port,
    recorder: app.webTop,
    closeServer: () => void app.close(),
  }
}

function startApp(): Promise<RunningApp> {
  if (framework === 'express5') return startExpress(express5)
  if (framework === 'express4') return startExpress(express4)
  if (framework === 'fastify4') return startFastify(fastify4 as unknown as typeof fastify5)
  return startFastify(fastify5)
}

function readMemory(recorder: Recorder): AppMessage {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  const memory = process.memoryUsage()
  return {
    type: 'stats',
    heapUsedBytes: memory.heapUsed,
    rssBytes: memory.rss,
    externalBytes: memory.external,
    tracker: recorder.tracker.stats(),
  }
}

/** Loads signal-exit as a library of the app would, with a handler that logs the process's end. */
function watchWithSignalExit(version: string): void {
  const log = (code: number | null | undefined, signal: string | null) => console.log(`app: signal-exit saw ${signal ?? code}`)
  if (version === 'v4') onExit(log)
  else if (version === 'v3') onExitV3(log)
}

async function main(): Promise<void> {
  watchWithSignalExit(process.env.WEB_TOP_TEST_SIGNAL_EXIT ?? '')
  const app = await startApp()

  if (process.env.WEB_TOP_TEST_SIGNAL_HANDLER === 'close-server') {
    process.once('SIGTERM', () => {
      console.log('app: SIGTERM received, closing the server')
      releaseHeld()
      app.closeServer()
    })
  }

  process.on('message', (command: AppCommand) => {
    if (command.type === 'stats') send(readMemory(app.recorder))
    else if (command.type === 'release') releaseHeld()
    else if (command.type === 'close-server') app.closeServer()
    else if (command.type === 'quit-client') {
      givenClient?.quit().then(
        () => console.log('app: redis client quit'),
        (err: Error) => console.log(`app: redis client quit failed: ${err.message}`),
      )
    } else if (command.type === 'disconnect-client') givenClient?.disconnect()
  })
  process.channel?.unref()
  process.on('exit', (code) => console.log(`app: exit ${code}, tracker stats ${JSON.stringify(app.recorder.tracker.stats())}`))
  send({ type: 'ready', port: app.port, processorIdPrefix: app.recorder.processorIdPrefix })
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
