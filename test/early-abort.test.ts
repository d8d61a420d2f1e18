/**
 * A client that leaves while code mounted before web-top still runs (an
 * auth lookup, say). When web-top gets the request, its response has
 * closed already: the request is recorded as a task that starts and ends
 * then, not dropped.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryTracker, topMiddleware, topPlugin, type TopOptions } from '../src/index'
import { waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { formatRequest, openConnection } from './helpers/raw-http'

const closers: Array<() => Promise<unknown>> = []

afterEach(async () => {
  for (const close of closers.splice(0)) await close()
})

/** Sends `GET <path>` on a raw connection and closes it after `leaveAfterMs`. */
async function sendAndLeave(port: number, path: string, leaveAfterMs: number): Promise<void> {
  const connection = await openConnection(port)
  connection.write(formatRequest('GET', path))
  setTimeout(() => connection.destroy(), leaveAfterMs)
  await connection.closed
}

async function readOnlyCompleted(tracker: MemoryTracker) {
  await waitFor('the completed task', async () => ((await tracker.read()).completed.length > 0 ? true : undefined), 15_000)
  // Long enough for a second record, if there were one, to arrive.
  await new Promise((resolve) => setTimeout(resolve, 200))
  return tracker.read()
}

describe('client gone before web-top runs', () => {
  it('is recorded as aborted by Express', async () => {
    const tracker = new MemoryTracker()
    const middleware = topMiddleware({ tracker, logger: captureLogger(), handleSignals: false })
    const app = express()
    app.use((_req, _res, next) => setTimeout(next, 300))
    app.use(middleware)
    app.get('/slow-auth', (_req, res) => res.send('ok'))
    const server: Server = createServer(app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    closers.push(() => middleware.close(), () => new Promise((resolve) => server.close(resolve)))

    await sendAndLeave((server.address() as AddressInfo).port, '/slow-auth', 100)
    const snapshot = await readOnlyCompleted(tracker)

    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed).toHaveLength(1)
    expect(snapshot.completed[0]?.path).toBe('/slow-auth')
    expect(snapshot.completed[0]?.recorded_successfully).toBe(false)
    expect(snapshot.completed[0]?.tags?.['web_top.outcome']).toBe('aborted')
  })

  it('is recorded as aborted by Fastify', async () => {
    const tracker = new MemoryTracker()
    const app = fastify()
    app.addHook('onRequest', (_request, _reply, done) => {
      setTimeout(done, 300)
    })
    await app.register(topPlugin, { tracker, logger: captureLogger(), handleSignals: false } as TopOptions)
    app.get('/slow-auth', async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })
    closers.push(() => app.close())

    await sendAndLeave((app.server.address() as AddressInfo).port, '/slow-auth', 100)
    const snapshot = await readOnlyCompleted(tracker)

    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed).toHaveLength(1)
    expect(snapshot.completed[0]?.path).toBe('/slow-auth')
    expect(snapshot.completed[0]?.tags?.['web_top.outcome']).toBe('aborted')
  })
})
