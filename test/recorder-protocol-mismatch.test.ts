/**
 * An app whose tracker URL reaches a server of the wrong kind, or with
 * other TLS, logs what listens there and what to change in the URL, as
 * web-top-cli does, while its requests get their normal responses. A
 * probe that threw or rejected into the app would fail the run, because
 * Vitest fails it on an uncaught exception or unhandled rejection.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { RedisTracker } from '../src/index'
import { sendRequest, startApp, waitFor, type HttpResult, type TestApp } from './helpers/http'
import { makeCertificates } from './helpers/certificates'
import { captureLogger, type LogLine } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** The password in the tracker URLs, which no log line may contain. */
const PASSWORD = 'mismatch-secret-pw'

/**
 * Max wait for the diagnosis line. With rediss:// at a Redis without TLS,
 * the first error comes after the connect timeout of 5 s, and the probe
 * after it takes up to 2 s.
 */
const LOG_WAIT_MS = 20_000

/**
 * How long an app keeps serving requests after its first mismatch line,
 * shorter than the default log interval of 30 s. The client reconnects a
 * few times per second meanwhile.
 */
const TRAFFIC_WINDOW_MS = 4_000

/** Returns whether a line is the recorder's mismatch line on a server that replied with something other than Redis. */
function isReplyMismatch(line: LogLine): boolean {
  return line.message.startsWith('redis connection error: the server replied')
}

/** A loopback TCP server that sends another banner on each connection (`startBannerServer`). */
interface BannerServer {
  port: number
  /** Number of connections accepted so far. */
  connections(): number
  close(): Promise<void>
}

/**
 * Starts a TCP server that sends a line that differs on each connection, a
 * banner with its number and time, and ends the connection. The server
 * never reads, so it does not see the end that ioredis sends after its
 * parser error, and `close()` destroys the sockets that are still open.
 */
async function startBannerServer(): Promise<BannerServer> {
  let connections = 0
  const sockets = new Set<Socket>()
  const server = createTcpServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.end(`BANNER conn ${connections} at ${Date.now()}\r\n`)
  })
  const port = await listenOnLoopback(server)
  return {
    port,
    connections: () => connections,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/** Returns a log line as a reader sees it: the message, then each field, errors by their message. */
function renderLine(line: LogLine): string {
  const fields = Object.entries(line.fields).map(([key, value]) => {
    const text = value instanceof Error ? `${value.name}: ${value.message}` : JSON.stringify(value)
    return `${key}=${text}`
  })
  return [line.message, ...fields].join(' ')
}

/**
 * Sends `GET /health` every 50 ms until `check` returns a line, and returns
 * that line with every response received meanwhile. On a timeout, the
 * error lists the lines that `logger` has.
 */
async function requestUntilLogged(
  app: TestApp,
  logger: { lines: LogLine[] },
  description: string,
  check: () => LogLine | undefined,
): Promise<{ line: LogLine; responses: HttpResult[] }> {
  const responses: HttpResult[] = []
  const line = await waitFor(
    description,
    async () => {
      responses.push(await sendRequest(`${app.url}/health`))
      await new Promise((resolve) => setTimeout(resolve, 50))
      return check()
    },
    LOG_WAIT_MS,
  ).catch((err: unknown) => {
    const logged = logger.lines.map(renderLine).join('\n')
    throw new Error(`${err instanceof Error ? err.message : String(err)}; the log has:\n${logged}`)
  })
  return { line, responses }
}

function expectNormalResponses(responses: readonly HttpResult[]): void {
  expect(responses.length).toBeGreaterThan(0)
  for (const response of responses) {
    expect(response.status).toBe(200)
    expect(response.body).toBe('ok')
  }
}

function expectCleanLog(lines: readonly LogLine[]): void {
  const rendered = lines.map(renderLine)
  expect(rendered.filter((line) => line.includes('Please report this'))).toEqual([])
  expect(rendered.filter((line) => line.includes(PASSWORD))).toEqual([])
}

/** Listens on a free loopback port and returns the port. */
async function listenOnLoopback(
  server: Server | ReturnType<typeof createTlsServer> | ReturnType<typeof createTcpServer>,
): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

describe.each(['express5', 'fastify5'] as const)('%s recording to a mismatched tracker URL', (framework) => {
  let app: TestApp | undefined
  let redis: TestRedis | undefined
  let httpServer: Server | undefined
  let tlsServer: ReturnType<typeof createTlsServer> | undefined
  let echoServer: ReturnType<typeof createTcpServer> | undefined
  let bannerServer: BannerServer | undefined
  let certificateDir: string | undefined

  afterEach(async () => {
    await app?.close()
    app = undefined
    await redis?.close()
    redis = undefined
    await new Promise((resolve) => (httpServer === undefined ? resolve(undefined) : httpServer.close(resolve)))
    httpServer = undefined
    await new Promise((resolve) => (tlsServer === undefined ? resolve(undefined) : tlsServer.close(resolve)))
    tlsServer = undefined
    await new Promise((resolve) => (echoServer === undefined ? resolve(undefined) : echoServer.close(resolve)))
    echoServer = undefined
    await bannerServer?.close()
    bannerServer = undefined
    if (certificateDir !== undefined) rmSync(certificateDir, { recursive: true, force: true })
    certificateDir = undefined
  })

  it('names Redis without TLS at rediss://', async () => {
    redis = await startRedis()
    const logger = captureLogger()
    const trackerUrl = `rediss://:${PASSWORD}@127.0.0.1:${redis.port}`
    app = await startApp(framework, { trackerUrl, logger })

    const { line, responses } = await requestUntilLogged(app, logger, 'the line on the port without TLS', () =>
      logger.lines.find((candidate) => candidate.message.includes('rediss://')),
    )

    expect(line.message).toContain('the server replies to a PING without TLS on that port')
    expect(line.message).toContain('use redis:// in place of rediss://')
    expect(line.fields.url).toBe(`rediss://:***@127.0.0.1:${redis.port}`)
    expectNormalResponses(responses)
    expectCleanLog(logger.lines)
  })

  it('names the maxclients of a full Redis', async () => {
    // The test Redis's own client takes the only connection that maxclients allows, once it has connected.
    redis = await startRedis(['--maxclients', '1'])
    expect(await redis.client.ping()).toBe('PONG')
    const logger = captureLogger()
    const trackerUrl = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`
    app = await startApp(framework, { trackerUrl, logger })

    const { line, responses } = await requestUntilLogged(app, logger, 'the line on the full Redis', () =>
      logger.lines.find((candidate) => candidate.message.includes('maxclients')),
    )

    expect(line.message).toContain('the server closed the connection with the error "ERR max number of clients reached"')
    expect(line.message).toContain('raise maxclients')
    expect(line.fields.url).toBe(`redis://:***@127.0.0.1:${redis.port}`)
    expectNormalResponses(responses)
    expectCleanLog(logger.lines)
  })

  it('names an HTTP server at redis://', async () => {
    httpServer = createServer((_request, response) => response.end('not redis'))
    const httpPort = await listenOnLoopback(httpServer)
    const logger = captureLogger()
    const trackerUrl = `redis://:${PASSWORD}@127.0.0.1:${httpPort}`
    app = await startApp(framework, { trackerUrl, logger })

    const { line, responses } = await requestUntilLogged(app, logger, 'the line on the HTTP server', () =>
      logger.lines.find((candidate) => candidate.message.includes('HTTP')),
    )

    expect(line.message).toContain('the server replied "HTTP/1.1 400 Bad Request", as an HTTP server does, not Redis')
    expect(line.message).toContain('Check the port in the tracker URL')
    expect(line.fields.url).toBe(`redis://:***@127.0.0.1:${httpPort}`)
    expectNormalResponses(responses)
    expectCleanLog(logger.lines)
  })

  it('names a TLS port at redis://', async () => {
    certificateDir = mkdtempSync(join(tmpdir(), 'web-top-mismatch-'))
    makeCertificates(certificateDir)
    // A TLS server that closes each connection after the handshake. A client that sends plain text fails the handshake.
    tlsServer = createTlsServer(
      { key: readFileSync(join(certificateDir, 'server.key')), cert: readFileSync(join(certificateDir, 'server.crt')) },
      (socket) => socket.end(),
    )
    tlsServer.on('tlsClientError', () => {})
    const tlsPort = await listenOnLoopback(tlsServer)
    const logger = captureLogger()
    app = await startApp(framework, { trackerUrl: `redis://:${PASSWORD}@127.0.0.1:${tlsPort}`, logger })

    const { line, responses } = await requestUntilLogged(app, logger, 'the line on the TLS port', () =>
      logger.lines.find((candidate) => candidate.message.includes('rediss://')),
    )

    expect(line.message).toContain('it completes a TLS handshake on that port')
    expect(line.message).toContain('use rediss:// in place of redis://')
    expect(line.fields.url).toBe(`redis://:***@127.0.0.1:${tlsPort}`)
    expectNormalResponses(responses)
    expectCleanLog(logger.lines)
  })

  it('masks a password the server echoes', async () => {
    // The reply quotes on one line what the client sent, AUTH and its password first.
    echoServer = createTcpServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', (data: Buffer) => {
        const input = data.toString('latin1').replace(/\r\n/g, ' ')
        socket.end(`ERR unknown input ${input}\r\n`)
      })
    })
    const echoPort = await listenOnLoopback(echoServer)
    // Longer than the 60 characters quoted, so that the quote ends inside it unless it is masked first.
    const longPassword = `${PASSWORD}-${'x'.repeat(40)}`
    const logger = captureLogger()
    app = await startApp(framework, { trackerUrl: `redis://:${longPassword}@127.0.0.1:${echoPort}`, logger })

    const { line, responses } = await requestUntilLogged(app, logger, 'the line on the echo server', () =>
      logger.lines.find((candidate) => candidate.message.includes('ERR unknown input')),
    )

    expect(line.message).toContain(`auth $${longPassword.length} ***`)
    expect(line.message).toContain('which is not the Redis protocol')
    expectNormalResponses(responses)
    expectCleanLog(logger.lines)
  })

  it('names a server of a binary protocol', async () => {
    // The server echoes the client's AUTH after a binary header line, so the password must not show.
    echoServer = createTcpServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', (data: Buffer) => socket.end(Buffer.concat([Buffer.from([0x00, 0xff, 0x0d, 0x0a]), data])))
    })
    const binaryPort = await listenOnLoopback(echoServer)
    const logger = captureLogger()
    app = await startApp(framework, { trackerUrl: `redis://:${PASSWORD}@127.0.0.1:${binaryPort}`, logger })

    const { line, responses } = await requestUntilLogged(app, logger, 'the line on the binary server', () =>
      logger.lines.find((candidate) => candidate.message.includes('binary data')),
    )

    expect(line.message).toContain('the server replied with binary data (0x00 …), which is not the Redis protocol')
    expect(line.message).toContain('Check the host and port in the URL')
    expect(line.fields.url).toBe(`redis://:***@127.0.0.1:${binaryPort}`)
    expectNormalResponses(responses)
    expectCleanLog(logger.lines)
  })

  it('logs a changing banner once', async () => {
    bannerServer = await startBannerServer()
    const banner = bannerServer
    const logger = captureLogger()
    app = await startApp(framework, { trackerUrl: `redis://:${PASSWORD}@127.0.0.1:${banner.port}`, logger })

    const first = await requestUntilLogged(app, logger, 'the line on the banner server', () =>
      logger.lines.find(isReplyMismatch),
    )
    const connectionsAtFirstLine = banner.connections()
    const responses = [...first.responses]
    const windowEnd = Date.now() + TRAFFIC_WINDOW_MS
    while (Date.now() < windowEnd) {
      responses.push(await sendRequest(`${app.url}/health`))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }

    // Each of these connections got another banner.
    expect(banner.connections() - connectionsAtFirstLine).toBeGreaterThanOrEqual(4)
    expect(logger.lines.filter(isReplyMismatch).map(renderLine)).toEqual([renderLine(first.line)])
    expect(first.line.message).toMatch(/the server replied "BANNER conn \d+ at \d+", which is not the Redis protocol/)
    expect(first.line.message).toContain('a server of another kind listens there, not Redis')
    expectNormalResponses(responses)
    expectCleanLog(logger.lines)
  })
})

describe('tracker at a server whose banner changes', () => {
  let bannerServer: BannerServer | undefined
  let tracker: RedisTracker | undefined

  afterEach(async () => {
    await tracker?.close()
    tracker = undefined
    await bannerServer?.close()
    bannerServer = undefined
  })

  it('repeats the first banner with a count', async () => {
    bannerServer = await startBannerServer()
    const logger = captureLogger()
    tracker = new RedisTracker({ url: `redis://127.0.0.1:${bannerServer.port}`, logger, logIntervalMs: 1_000 })

    const [first, second] = await waitFor(
      'two lines on the banner server',
      () => {
        const lines = logger.lines.filter(isReplyMismatch)
        return lines.length >= 2 ? lines : undefined
      },
      LOG_WAIT_MS,
    )

    expect(first?.message).toContain('which is not the Redis protocol')
    expect(first?.fields.repeated).toBeUndefined()
    expect(second?.message).toBe(first?.message)
    expect(second?.fields.repeated).toBeGreaterThanOrEqual(1)
  })
})
