/**
 * The Express middleware mounted where no `next` comes: as a plain
 * `node:http` request listener, and as Koa middleware, which gets
 * `(ctx, next)`. Each must fail on the first request with web-top's
 * TypeError, which names the mistake and the call to write instead, and
 * not with an internal error such as `next is not a function`.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Koa from 'koa'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { INVALID_OPTION, topMiddleware } from '../src/index'
import { sendRequest } from './helpers/http'
import { runNode } from './helpers/node-process'

afterEach(() => {
  vi.restoreAllMocks()
})

/**
 * A plain `node:http` server with the middleware as its request listener,
 * which sends itself one request. The error escapes the listener and ends
 * the process, as any throw from a request listener does.
 */
const LISTENER_SCRIPT = `
  const http = require('node:http')
  const { topMiddleware } = require('./src/index.ts')
  const server = http.createServer(topMiddleware({ trackerUrl: 'memory://' }))
  process.on('uncaughtException', (err) => {
    console.log(JSON.stringify({ name: err.name, code: err.code, message: err.message }))
    process.exit(0)
  })
  server.listen(0, '127.0.0.1', () => {
    const req = http.get('http://127.0.0.1:' + server.address().port + '/', () => {})
    req.on('error', () => {})
  })
`

describe('topMiddleware() as a request listener', () => {
  it('throws a TypeError that names withTop', async () => {
    const result = await runNode(['--import', 'tsx', '-e', LISTENER_SCRIPT], { TOP_TRACKER_URL: 'memory://' }, 15_000)
    expect(result.stderr).toBe('')
    const error = JSON.parse(result.stdout) as { name: string; code: string; message: string }
    expect(error.name).toBe('TypeError')
    expect(error.code).toBe(INVALID_OPTION)
    expect(error.message).toMatch(/^web-top: topMiddleware is Express middleware, but it was called as a request listener/)
    expect(error.message).toContain('http.createServer(withTop(listener, options))')
    expect(error.message).toContain('createRequestTracker(options)')
  })
})

describe('topMiddleware in Koa', () => {
  it.each([
    ['topMiddleware()', 'app.use(topMiddleware())'],
    ['topMiddleware', 'app.use(topMiddleware)'],
  ])('answers 500 with a TypeError for app.use(%s)', async (written, mount) => {
    const middleware = written === 'topMiddleware()' ? topMiddleware({ trackerUrl: 'memory://', handleSignals: false }) : topMiddleware
    const stderr = vi.spyOn(process.stderr, 'write')
    const errors: unknown[] = []
    const app = new Koa()
    app.on('error', (err: unknown) => errors.push(err))
    app.use(middleware as unknown as Koa.Middleware)
    app.use((ctx) => {
      ctx.body = 'ok'
    })
    const server = await listen(createServer(app.callback()))

    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
      const response = await sendRequest(url, { abortAfterMs: 3_000 })
      expect(response.status).toBe(500)
    } finally {
      await new Promise((resolve) => server.close(resolve))
      if ('close' in middleware) await middleware.close()
    }

    expect(errors).toHaveLength(1)
    const error = errors[0] as Error & { code?: unknown }
    expect(error).toBeInstanceOf(TypeError)
    expect(error.code).toBe(INVALID_OPTION)
    expect(error.message).toMatch(/^web-top: topMiddleware is Express middleware, but Koa called it with \(ctx, next\)/)
    expect(error.message).toContain('createRequestTracker(options)')
    expect(error.message).toContain('top.track(ctx.req, ctx.res)')
    expect(error.message).toContain(`instead of ${mount}`)
    // Without the check, the call without parentheses made a recorder from the context's properties.
    const warnings = stderr.mock.calls.map(([chunk]) => String(chunk)).filter((line) => line.includes('unknown option'))
    expect(warnings).toEqual([])
  })
})

async function listen(server: Server): Promise<Server> {
  server.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return server
}
