/**
 * HTTP/2 through Node's compatibility API: Fastify's `http2` option, in
 * clear text and over TLS, and a plain `node:http2` server with `withTop`.
 * Node's HTTP/2 requests carry pseudo-headers, count a response reset by
 * the client as finished, and warn when the reason phrase is read, so each
 * of these gets a check against a private Redis.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { RequestListener } from 'node:http'
import {
  connect,
  constants,
  createServer,
  type ClientHttp2Session,
  type Http2Server,
  type IncomingHttpHeaders,
} from 'node:http2'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fastify5, { type FastifyInstance } from 'fastify'
import fastify4 from 'fastify4'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { topPlugin, withTop, type HttpTask } from '../src/index'
import { makeCertificates } from './helpers/certificates'
import { waitFor } from './helpers/http'
import { headerValues, waitForCompleted } from './helpers/recording-cases'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

const FASTIFY_VERSIONS = [
  ['fastify5', fastify5],
  ['fastify4', fastify4 as unknown as typeof fastify5],
] as const

/** Max time a held request stays open, so that a failed test cannot leave one open for good. */
const MAX_HOLD_MS = 10_000

let redis: TestRedis
let certificateDir: string
/** Process warnings emitted while the tests ran, such as Node's `UnsupportedWarning`. */
const warnings: Error[] = []
const onWarning = (warning: Error) => warnings.push(warning)

beforeAll(async () => {
  redis = await startRedis()
  certificateDir = mkdtempSync(join(tmpdir(), 'web-top-http2-'))
  makeCertificates(certificateDir)
  process.on('warning', onWarning)
})

afterAll(async () => {
  process.off('warning', onWarning)
  await redis?.close()
  rmSync(certificateDir, { recursive: true, force: true })
})

const apps: FastifyInstance[] = []
const sessions: ClientHttp2Session[] = []

beforeEach(async () => {
  await redis.client.flushall()
})

afterEach(async () => {
  for (const session of sessions.splice(0)) session.destroy()
  for (const app of apps.splice(0)) await app.close()
})

interface Http2Response {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** Opens an HTTP/2 session to `origin`, closed after the test. */
function openSession(origin: string, ca?: Buffer): ClientHttp2Session {
  const session = connect(origin, ca === undefined ? {} : { ca })
  session.on('error', () => {})
  sessions.push(session)
  return session
}

/** Sends a GET on `session` and waits for the whole response. */
function get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<Http2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ...headers })
    let responseHeaders: IncomingHttpHeaders = {}
    let body = ''
    stream.setEncoding('utf8')
    stream.on('response', (received) => {
      responseHeaders = received
    })
    stream.on('data', (chunk: string) => {
      body += chunk
    })
    stream.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body }))
    stream.on('error', reject)
    stream.end()
  })
}

/**
 * Sends a GET on `session` and resets the stream (CANCEL) once the server
 * sent the response headers, or after `afterMs` when `afterMs` is given.
 */
function getThenCancel(session: ClientHttp2Session, path: string, afterMs?: number): Promise<void> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': path })
    stream.on('error', () => {})
    stream.on('close', () => resolve())
    const cancel = () => stream.close(constants.NGHTTP2_CANCEL)
    if (afterMs === undefined) stream.on('response', cancel)
    else setTimeout(cancel, afterMs)
    stream.end()
  })
}

/** Starts a Fastify app with `http2` and web-top, and returns its origin. */
async function startFastify(fastify: typeof fastify5, tls: boolean): Promise<string> {
  const https = tls
    ? {
        allowHTTP1: true,
        key: readFileSync(join(certificateDir, 'server.key')),
        cert: readFileSync(join(certificateDir, 'server.crt')),
      }
    : undefined
  // Typed as an HTTP/1.1 app for the helpers; test/fixtures/dual-module-types checks the HTTP/2 types.
  const app = (https === undefined ? fastify({ http2: true }) : fastify({ http2: true, https })) as unknown as FastifyInstance
  apps.push(app)
  await app.register(topPlugin, { trackerUrl: redis.url, batchWindowMs: 0 })

  app.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  app.get('/partial', (_request, reply) => {
    // Sends the headers and part of the body, then keeps the rest back.
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.write('partial')
    setTimeout(() => reply.raw.end('rest'), MAX_HOLD_MS).unref()
  })
  app.get('/hold', async () => {
    await new Promise((resolve) => setTimeout(resolve, MAX_HOLD_MS).unref())
    return { late: true }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return `${tls ? 'https' : 'http'}://127.0.0.1:${port}`
}

/** Waits until `processors` is empty and returns the completed tasks, newest first. */
async function waitForEnded(count: number): Promise<HttpTask[]> {
  const completed = await waitForCompleted(redis.client, count)
  await waitFor('no active entry', async () => {
    const stored = await readStoredTasks(redis.client)
    return Object.keys(stored.processors).length === 0 ? true : undefined
  })
  return completed
}

describe.each(FASTIFY_VERSIONS)('%s with http2', (_name, fastify) => {
  it('records a request like HTTP/1.1', async () => {
    const origin = await startFastify(fastify, false)
    const session = openSession(origin)
    const response = await get(session, '/users/7?page=2', { 'user-agent': 'h2-test', cookie: 'sid=secret' })
    expect(response.status).toBe(200)

    const [task] = await waitForEnded(1)
    expect(task?.method).toBe('GET')
    expect(task?.path).toBe('/users/7')
    expect(task?.uri).toBe('/users/7?page=2')
    expect(task?.task_name).toBe('/users/:id')
    expect(task?.protocol).toBe('http')
    expect(task?.host).toBe(new URL(origin).host)
    expect(task?.status_code).toBe(200)
    expect(task?.status_message).toBe('200 OK')
    expect(task?.recorded_successfully).toBe(true)
    expect(headerValues(task?.request_headers ?? [], 'user-agent')).toEqual(['h2-test'])
    expect(headerValues(task?.request_headers ?? [], 'cookie')).toEqual(['[REDACTED]'])
    expect(headerValues(task?.response_headers ?? [], 'content-type')).toEqual(['application/json; charset=utf-8'])
  })

  it('leaves out pseudo-headers', async () => {
    const origin = await startFastify(fastify, false)
    await get(openSession(origin), '/users/8')

    const [task] = await waitForEnded(1)
    const requestNames = (task?.request_headers ?? []).map(([name]) => name)
    const responseNames = (task?.response_headers ?? []).map(([name]) => name)
    expect(requestNames.filter((name) => name.startsWith(':'))).toEqual([])
    expect(responseNames.filter((name) => name.startsWith(':'))).toEqual([])
  })

  it('records a 404', async () => {
    const origin = await startFastify(fastify, false)
    const response = await get(openSession(origin), '/missing')
    expect(response.status).toBe(404)

    const [task] = await waitForEnded(1)
    expect(task?.status_code).toBe(404)
    expect(task?.status_message).toBe('404 Not Found')
    expect(task?.recorded_successfully).toBe(true)
  })

  it('records a stream reset mid-body as aborted', async () => {
    const origin = await startFastify(fastify, false)
    await getThenCancel(openSession(origin), '/partial')

    const [task] = await waitForEnded(1)
    expect(task?.path).toBe('/partial')
    expect(task?.status_code).toBe(200)
    expect(task?.recorded_successfully).toBe(false)
    expect(task?.tags?.['web_top.outcome']).toBe('aborted')
  })

  it('records a stream reset before any reply without status', async () => {
    const origin = await startFastify(fastify, false)
    const session = openSession(origin)
    await getThenCancel(session, '/hold', 100)

    const [task] = await waitForEnded(1)
    expect(task?.path).toBe('/hold')
    expect(task?.status_code).toBeNull()
    expect(task?.recorded_successfully).toBe(false)
  })

  it('records HTTPS and HTTP/1.1 on one TLS server', async () => {
    const origin = await startFastify(fastify, true)
    const ca = readFileSync(join(certificateDir, 'ca.crt'))
    await get(openSession(origin, ca), '/users/1')
    const http1 = await fetchOverHttp1(`${origin}/users/2`, ca)
    expect(http1).toBe(200)

    const tasks = await waitForEnded(2)
    const byPath = new Map(tasks.map((task) => [task.path, task]))
    expect(byPath.get('/users/1')?.protocol).toBe('https')
    expect(byPath.get('/users/1')?.status_code).toBe(200)
    expect(byPath.get('/users/2')?.protocol).toBe('https')
    expect(byPath.get('/users/2')?.status_message).toBe('200 OK')
  })
})

describe('node:http2 server with withTop', () => {
  let server: Http2Server | undefined

  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  })

  it('records requests', async () => {
    const listener = withTop(
      ((_req, res) => {
        res.setHeader('Content-Type', 'text/plain')
        res.end('ok')
      }) as RequestListener,
      { trackerUrl: redis.url, batchWindowMs: 0 },
    )
    server = createServer(listener as unknown as Parameters<typeof createServer>[0])
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const session = openSession(`http://127.0.0.1:${port}`)

    const responses = await Promise.all([get(session, '/a'), get(session, '/b'), get(session, '/c')])
    expect(responses.map((response) => response.body)).toEqual(['ok', 'ok', 'ok'])

    const tasks = await waitForEnded(3)
    expect(tasks.map((task) => task.path).sort()).toEqual(['/a', '/b', '/c'])
    for (const task of tasks) {
      expect(task.status_code).toBe(200)
      expect(task.status_message).toBe('200 OK')
      expect(task.host).toBe(`127.0.0.1:${port}`)
      expect(headerValues(task.response_headers ?? [], 'content-type')).toEqual(['text/plain'])
    }
    session.destroy()
    await listener.close()
  })
})

describe('warnings', () => {
  // Runs after the others in this file, whose end records read every response.
  it('none from the reason phrase', () => {
    expect(warnings.map((warning) => `${warning.name}: ${warning.message}`)).toEqual([])
  })
})

/** Sends a GET over HTTP/1.1 with TLS and returns the status. */
async function fetchOverHttp1(url: string, ca: Buffer): Promise<number> {
  const { request } = await import('node:https')
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}
