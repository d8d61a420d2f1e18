/**
 * A real Redis Cluster (three masters, one replica each) behind an Express
 * app and a Fastify app, each with its own hash-tagged key prefix. Both
 * record under load and read back through `createTrackerFromUrl` and the
 * CLI. Then the master of one app's slot is killed: responses stay right,
 * the replica takes over, and recording and reading go on without a restart.
 */
import { Agent, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import fastify, { type FastifyInstance } from 'fastify'
import { Cluster as Cluster6 } from 'ioredis6'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createRedisClient,
  createTrackerFromUrl,
  listPrefixes,
  topMiddleware,
  topPlugin,
  type TopMiddleware,
  type Tracker,
} from '../src/index'
import type { HttpTask } from '../src/task/http-task'
import { runCli } from './helpers/cli'
import { runNode } from './helpers/node-process'
import { CLUSTER_NODE_TIMEOUT_MS, startRedisCluster, type TestCluster } from './helpers/redis-cluster'

/** Requests sent to each app in the load phase. */
const LOAD_REQUESTS = 2_000
/** Requests in flight at once against each app. */
const CONCURRENCY = 8
/** Above every request count of this file, so `past_tasks` keeps them all. */
const MAX_COMPLETED_TASKS = 10_000
/** Requests sent to the app whose master died, once the replica has taken over. */
const AFTER_FAILOVER_REQUESTS = 200
/** Bound on the wait for the replica to take over: the node timeout plus election and slack. */
const FAILOVER_TIMEOUT_MS = CLUSTER_NODE_TIMEOUT_MS + 15_000

/** Hash tags tried, in order, for two apps whose slots have different masters. */
const CANDIDATE_TAGS = ['shop', 'blog', 'mail', 'chat', 'news', 'wiki', 'docs', 'cart']

interface RunningApp {
  name: string
  prefix: string
  origin: string
  /** Path of the request with this number; the route pattern is `routePattern`. */
  pathOf(id: number): string
  routePattern: string
  tracker(): Tracker
  close(): Promise<void>
}

let cluster: TestCluster
let shop: RunningApp
let blog: RunningApp
let shopReader: Tracker
let blogReader: Tracker
const agent = new Agent({ keepAlive: true, maxSockets: 2 * CONCURRENCY })

beforeAll(async () => {
  cluster = await startRedisCluster()
  const [shopPrefix, blogPrefix] = await choosePrefixesOnTwoMasters()
  shop = await startExpressApp('shop', shopPrefix)
  blog = await startFastifyApp('blog', blogPrefix)
  shopReader = createTrackerFromUrl(cluster.url, { keyPrefix: shop.prefix, maxCompletedTasks: MAX_COMPLETED_TASKS })
  blogReader = createTrackerFromUrl(cluster.url, { keyPrefix: blog.prefix, maxCompletedTasks: MAX_COMPLETED_TASKS })
}, 40_000)

afterAll(async () => {
  agent.destroy()
  await Promise.allSettled([shop?.close(), blog?.close(), shopReader?.close(), blogReader?.close()])
  await cluster?.close()
})

describe('Redis Cluster', () => {
  it('puts the two prefixes on different slots', async () => {
    const shopSlot = await cluster.keySlot(`${shop.prefix}past_tasks`)
    const blogSlot = await cluster.keySlot(`${blog.prefix}past_tasks`)

    expect(shopSlot).not.toBe(blogSlot)
    expect(await cluster.keySlot(`${shop.prefix}processors`)).toBe(shopSlot)
    expect(await cluster.keySlot(`${shop.prefix}last_cleared_at`)).toBe(shopSlot)
    expect(await cluster.masterPortOf(shopSlot)).not.toBe(await cluster.masterPortOf(blogSlot))
  })

  it('records both apps under load', async () => {
    const [shopResults, blogResults] = await Promise.all([
      sendRequests(shop, range(1, LOAD_REQUESTS)),
      sendRequests(blog, range(1, LOAD_REQUESTS)),
    ])
    expect(shopResults.failures).toEqual([])
    expect(blogResults.failures).toEqual([])

    await shop.tracker().flush()
    await blog.tracker().flush()
    for (const [app, reader] of [[shop, shopReader], [blog, blogReader]] as const) {
      const snapshot = await reader.read()
      expect(snapshot.active.size).toBe(0)
      expect(snapshot.skipped).toBe(0)
      expect(sortedPaths(snapshot.completed)).toEqual(range(1, LOAD_REQUESTS).map(app.pathOf).sort())
      expect(new Set(snapshot.completed.map((task) => task.task_name))).toEqual(new Set([app.routePattern]))
      expect(new Set(snapshot.completed.map((task) => task.method))).toEqual(new Set(['GET']))
      expect(new Set(snapshot.completed.map((task) => task.status_code))).toEqual(new Set([200]))
    }
    expect(shop.tracker().stats().dropped).toBe(0)
    expect(blog.tracker().stats().dropped).toBe(0)
  }, 40_000)

  it('reads each prefix with the CLI', async () => {
    for (const app of [shop, blog]) {
      const args = ['recent', '--json', '--tracker-url', cluster.url, '--prefix', app.prefix]
      const result = await runCli(args, { timeoutMs: 20_000 })

      expect(result.stderr).toBe('')
      expect(result.code).toBe(0)
      const tasks = JSON.parse(result.stdout) as HttpTask[]
      expect(sortedPaths(tasks)).toEqual(range(1, LOAD_REQUESTS).map(app.pathOf).sort())
      expect(tasks.every((task) => task.task_name === app.routePattern)).toBe(true)
    }
  })

  it('lists both prefixes', async () => {
    const client = createRedisClient(cluster.url)
    try {
      expect(await listPrefixes(client)).toEqual([blog.prefix, shop.prefix].sort())
    } finally {
      client.disconnect()
    }
  })

  it('lets an Express app exit after its server closes', async () => {
    const script = `
      const { createServer } = require('node:http')
      const express = require('express')
      const { topMiddleware } = require('./src/index.ts')
      const app = express()
      app.use(topMiddleware({ trackerUrl: process.env.TEST_CLUSTER_URL, keyPrefix: '{exit}:' }))
      app.get('/', (req, res) => res.send('ok'))
      const server = createServer(app)
      server.listen(0, '127.0.0.1', async () => {
        await fetch('http://127.0.0.1:' + server.address().port + '/')
        server.close(() => console.log('closed'))
      })
    `
    const started = Date.now()
    const result = await runNode(['--import', 'tsx', '-e', script], { TEST_CLUSTER_URL: cluster.url }, 15_000)
    expect(result.stdout.trim()).toBe('closed')
    expect(result.code).toBe(0)
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('records through an ioredis 6 Cluster client', async () => {
    const client = new Cluster6(cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })))
    const prefix = '{v6}:'
    const reader = createTrackerFromUrl(cluster.url, { keyPrefix: prefix })
    try {
      expect(() => topMiddleware({ redis: client, keyPrefix: 'v6:' })).toThrow(/hash tag/)

      const recording = topMiddleware({ redis: client, keyPrefix: prefix, logger: quietLogger })
      const app = express()
      app.use(recording)
      app.get('/v6/items/:id', (req, res) => {
        res.json({ app: 'v6', id: req.params.id })
      })
      const server = app.listen(0, '127.0.0.1')
      await new Promise((resolve) => server.once('listening', resolve))
      const v6: RunningApp = {
        name: 'v6',
        prefix,
        origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        pathOf: (id) => `/v6/items/${id}`,
        routePattern: '/v6/items/:id',
        tracker: () => recording.recorder.tracker,
        close: async () => {
          await new Promise((resolve) => server.close(resolve))
          await recording.close()
        },
      }
      const results = await sendRequests(v6, range(1, 50))
      await recording.recorder.tracker.flush()
      await v6.close()

      expect(results.failures).toEqual([])
      const snapshot = await reader.read()
      expect(sortedPaths(snapshot.completed)).toEqual(range(1, 50).map(v6.pathOf).sort())
      expect(new Set(snapshot.completed.map((task) => task.status_code))).toEqual(new Set([200]))
      expect(recording.recorder.tracker.stats().dropped).toBe(0)
      expect(client.status).toBe('ready')
    } finally {
      client.disconnect()
      await reader.close()
    }
  })

  it('keeps recording through a master failover', async () => {
    const shopSlot = await cluster.keySlot(`${shop.prefix}past_tasks`)
    const deadMasterPort = await cluster.masterPortOf(shopSlot)
    const published: string[] = []
    const unsubscribe = await shopReader.subscribe((json) => published.push(json))

    // Traffic on both apps while the master dies and the replica takes over.
    const duringLoad = startBackgroundLoad([shop, blog], 10_000)
    await cluster.kill(deadMasterPort)
    const failoverStarted = Date.now()
    const killedAt = failoverStarted
    await waitUntil('the replica to take over the shop slot', FAILOVER_TIMEOUT_MS, async () => {
      return (await cluster.masterPortOf(shopSlot)) !== deadMasterPort
    })
    await cluster.waitForStateOk(FAILOVER_TIMEOUT_MS)
    const failoverMs = Date.now() - failoverStarted
    const during = await duringLoad.stop()

    expect(during.failures).toEqual([])
    expect(during.sent).toBeGreaterThan(0)
    expect(failoverMs).toBeLessThan(FAILOVER_TIMEOUT_MS)
    // Writes to the dead master were rejected until the replica took over, and sent again.
    // Redis replicates asynchronously, so writes that the master acknowledged
    // just before it died may be lost with it: only the requests made after
    // the kill must all be there.
    await shop.tracker().flush()
    expect(shop.tracker().stats().dropped).toBe(0)
    expect(shop.tracker().stats().pendingBytes).toBe(0)
    const duringPaths = during.idsSentTo(shop, killedAt).map(shop.pathOf)
    expect(duringPaths.length).toBeGreaterThan(0)
    const recorded = new Set((await shopReader.read()).completed.map((task) => task.path))
    expect(duringPaths.filter((path) => !recorded.has(path))).toEqual([])

    // After the failover, with the same apps, trackers and reader.
    const afterIds = range(100_001, 100_000 + AFTER_FAILOVER_REQUESTS)
    const after = await sendRequests(shop, afterIds)
    expect(after.failures).toEqual([])
    const expectedPaths = afterIds.map(shop.pathOf)

    const completed = await waitUntil('the requests after failover in past_tasks', 15_000, async () => {
      const snapshot = await shopReader.read()
      const paths = new Set(snapshot.completed.map((task) => task.path))
      return expectedPaths.every((path) => paths.has(path)) ? snapshot.completed : undefined
    })
    const afterTasks = completed.filter((task) => expectedPaths.includes(task.path ?? ''))
    expect(afterTasks).toHaveLength(AFTER_FAILOVER_REQUESTS)
    expect(afterTasks.every((task) => task.status_code === 200 && task.task_name === shop.routePattern)).toBe(true)

    await waitUntil('the update messages after failover', 10_000, async () => {
      const seen = new Set(published.map((json) => (JSON.parse(json) as HttpTask).path))
      return expectedPaths.every((path) => seen.has(path)) ? true : undefined
    })
    await unsubscribe()

    // The blog app's master never went down, so none of its writes were lost.
    await blog.tracker().flush()
    expect(blog.tracker().stats().dropped).toBe(0)
    const blogSnapshot = await blogReader.read()
    expect(blogSnapshot.completed).toHaveLength(LOAD_REQUESTS + during.sentTo(blog))
  }, 70_000)
})

/** Picks two hash-tagged prefixes whose slots are served by different masters. */
async function choosePrefixesOnTwoMasters(): Promise<[string, string]> {
  const chosen: Array<{ prefix: string; master: number }> = []
  for (const tag of CANDIDATE_TAGS) {
    const prefix = `{${tag}}:`
    const master = await cluster.masterPortOf(await cluster.keySlot(`${prefix}past_tasks`))
    if (chosen.every((other) => other.master !== master)) chosen.push({ prefix, master })
    if (chosen.length === 2) return [chosen[0]!.prefix, chosen[1]!.prefix]
  }
  throw new Error(`no two of the tags ${CANDIDATE_TAGS.join(', ')} hash to slots of different masters`)
}

async function startExpressApp(name: string, prefix: string): Promise<RunningApp> {
  const app = express()
  const recording: TopMiddleware = topMiddleware({
    trackerUrl: cluster.url,
    keyPrefix: prefix,
    maxCompletedTasks: MAX_COMPLETED_TASKS,
    logger: quietLogger,
  })
  app.use(recording)
  app.get(`/${name}/items/:id`, (req, res) => {
    res.json({ app: name, id: req.params.id })
  })
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening))
  })

  return {
    name,
    prefix,
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pathOf: (id) => `/${name}/items/${id}`,
    routePattern: `/${name}/items/:id`,
    tracker: () => recording.recorder.tracker,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve))
      server.closeAllConnections()
      await closed
      await recording.close()
    },
  }
}

async function startFastifyApp(name: string, prefix: string): Promise<RunningApp> {
  const app: FastifyInstance = fastify()
  await app.register(topPlugin, {
    trackerUrl: cluster.url,
    keyPrefix: prefix,
    maxCompletedTasks: MAX_COMPLETED_TASKS,
    logger: quietLogger,
  })
  app.get<{ Params: { id: string } }>(`/${name}/posts/:id`, async (request) => {
    return { app: name, id: request.params.id }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })

  return {
    name,
    prefix,
    origin: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    pathOf: (id) => `/${name}/posts/${id}`,
    routePattern: `/${name}/posts/:id`,
    tracker: () => app.webTop.tracker,
    close: () => app.close(),
  }
}

/** Write failures during the failover are expected; the tests count them through `stats()`. */
const quietLogger = { warn() {}, error() {} }

interface LoadResult {
  /** Requests whose status or body was wrong, or that failed, described one per entry. */
  failures: string[]
}

/** Sends GET requests for `ids`, `CONCURRENCY` at a time, and checks each status and body. */
async function sendRequests(app: RunningApp, ids: number[]): Promise<LoadResult> {
  const failures: string[] = []
  let next = 0
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++] as number
      const failure = await checkRequest(app, id)
      if (failure !== undefined) failures.push(failure)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return { failures }
}

/** Sends one request and returns what was wrong with its response, or undefined. */
async function checkRequest(app: RunningApp, id: number): Promise<string | undefined> {
  const path = app.pathOf(id)
  try {
    const { status, body } = await get(`${app.origin}${path}`)
    const expected = JSON.stringify({ app: app.name, id: String(id) })
    if (status !== 200 || body !== expected) return `${path}: ${status} ${body}`
    return undefined
  } catch (error) {
    return `${path}: ${(error as Error).message}`
  }
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out after 10 s')))
    req.on('error', reject)
    req.end()
  })
}

interface BackgroundLoad {
  /** Stops sending and resolves once the requests in flight have their responses. */
  stop(): Promise<
    LoadResult & {
      sent: number
      sentTo(app: RunningApp): number
      /** Ids of the requests sent to `app` from `sinceMs` (epoch ms) on. */
      idsSentTo(app: RunningApp, sinceMs?: number): number[]
    }
  >
}

/** Sends requests to each app, two at a time, until stopped or until `maxMs` passed. */
function startBackgroundLoad(apps: RunningApp[], maxMs: number): BackgroundLoad {
  const failures: string[] = []
  const sent = new Map<RunningApp, Array<{ id: number; sentAtMs: number }>>(apps.map((app) => [app, []]))
  const deadline = Date.now() + maxMs
  let stopped = false
  let nextId = 50_001

  const worker = async (app: RunningApp) => {
    while (!stopped && Date.now() < deadline) {
      const id = nextId++
      const sentAtMs = Date.now()
      const failure = await checkRequest(app, id)
      sent.get(app)?.push({ id, sentAtMs })
      if (failure !== undefined) failures.push(failure)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  const running = Promise.all(apps.flatMap((app) => [worker(app), worker(app)]))

  return {
    async stop() {
      stopped = true
      await running
      return {
        failures,
        sent: [...sent.values()].reduce((sum, ids) => sum + ids.length, 0),
        sentTo: (app) => sent.get(app)?.length ?? 0,
        idsSentTo: (app, sinceMs = 0) =>
          (sent.get(app) ?? []).filter((request) => request.sentAtMs >= sinceMs).map((request) => request.id),
      }
    },
  }
}

/** Polls `check` every 100 ms, ignoring its errors, until it returns a value other than undefined. */
async function waitUntil<T>(
  description: string,
  timeoutMs: number,
  check: () => Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${reason}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, index) => first + index)
}

function sortedPaths(tasks: HttpTask[]): string[] {
  return tasks.map((task) => task.path ?? '').sort()
}
