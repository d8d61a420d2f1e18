/**
 * Fastify's `rewriteUrl` option changes `req.url` before routing. The
 * plugin records and matches `ignore` against the URL as the client sent
 * it, as the Express middleware does with `req.originalUrl`.
 */
import fastify5 from 'fastify'
import fastify4 from 'fastify4'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { topPlugin } from '../src/index'
import { readStoredTasks, startRedis, waitUntil, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
})

/** Maps `/old/<rest>` to `/new/<rest>`, as an app that renamed its routes would. */
function rewriteOldPaths(req: { url?: string }): string {
  const url = req.url ?? '/'
  return url.startsWith('/old/') ? `/new/${url.slice('/old/'.length)}` : url
}

/** Fastify 4, typed with the Fastify 5 types that the test uses from both. */
const FASTIFY_VERSIONS = [
  ['fastify5', fastify5],
  ['fastify4', fastify4 as unknown as typeof fastify5],
] as const

describe.each(FASTIFY_VERSIONS)('%s rewriteUrl', (_name, fastify) => {
  it('records and ignores the URL as sent', async () => {
    const app = fastify({ logger: false, rewriteUrl: rewriteOldPaths })
    await app.register(topPlugin, {
      trackerUrl: redis.url,
      handleSignals: false,
      // The first matches the health check as sent. The second would match only a rewritten URL.
      ignore: ['/old/health', '/new/7'],
    })
    app.get('/new/:id', async () => 'new')
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo

    try {
      for (const path of ['/old/health', '/old/7?q=1', '/old/5']) {
        const response = await fetch(`http://127.0.0.1:${port}${path}`)
        expect(await response.text()).toBe('new')
      }
      await waitUntil('the records of /old/7 and /old/5', 15_000, async () => {
        return (await readStoredTasks(redis.client)).pastTasks.length === 2
      })

      const tasks = (await readStoredTasks(redis.client)).pastTasks.reverse()
      expect(tasks.map((task) => task.path)).toEqual(['/old/7', '/old/5'])
      expect(tasks.map((task) => task.uri)).toEqual(['/old/7?q=1', '/old/5'])
      expect(tasks.map((task) => task.task_name)).toEqual(['/new/:id', '/new/:id'])
    } finally {
      await app.close()
    }
  })

  it('records a response sent without hooks with the URL as sent', async () => {
    const app = fastify({ logger: false, rewriteUrl: rewriteOldPaths })
    await app.register(topPlugin, { trackerUrl: redis.url, handleSignals: false })
    app.get('/new/:id', async () => 'new')
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo

    try {
      // Fastify responds to a path it cannot decode with 400, without running the hooks.
      const response = await fetch(`http://127.0.0.1:${port}/old/%`)
      expect(response.status).toBe(400)
      await waitUntil('the record of the 400', 15_000, async () => {
        return (await readStoredTasks(redis.client)).pastTasks.length === 1
      })
      const [record] = (await readStoredTasks(redis.client)).pastTasks

      expect(record?.status_code).toBe(400)
      expect(record?.uri).toBe('/old/%')
    } finally {
      await app.close()
    }
  })
})
