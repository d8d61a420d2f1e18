/**
 * End to end: the Express example with two cluster workers and the Fastify
 * example record real traffic to a private Redis, and the CLI and Redis show
 * exactly what the traffic generator sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { parseIsoTime } from '../src/task/time'
import { decodeTask } from '../src/task/wire'
import { runCli } from './helpers/cli'
import {
  countTasksByRoute,
  countTrafficByRoute,
  runTraffic,
  startExample,
  type ExampleProcess,
} from './helpers/example-process'
import { findFreePort, startRedis, type TestRedis } from './helpers/redis-server'

const REQUESTS = 400
/** Above the number of requests, so that `past_tasks` keeps every one of them. */
const MAX_COMPLETED_TASKS = 1_000

let redis: TestRedis
const apps: ExampleProcess[] = []

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await Promise.all(apps.map((app) => app.stop()))
  await redis?.close()
})

describe('examples on a private Redis', () => {
  it('records cluster traffic exactly', async () => {
    const expressPort = await findFreePort()
    const fastifyPort = await findFreePort()
    const env = { TOP_MAX_COMPLETED_TASKS: String(MAX_COMPLETED_TASKS) }
    const expressApp = startExample('express.ts', {
      trackerUrl: redis.url,
      args: ['--port', String(expressPort), '--workers', '2'],
      env,
    })
    const fastifyApp = startExample('fastify.ts', {
      trackerUrl: redis.url,
      args: ['--port', String(fastifyPort)],
      env,
    })
    apps.push(expressApp, fastifyApp)
    await Promise.all([
      expressApp.waitForLines(/worker \d+ listening/, 2, 20_000),
      fastifyApp.waitForLines(/listening/, 1, 20_000),
    ])

    const expressOrigin = `http://127.0.0.1:${expressPort}`
    const fastifyOrigin = `http://127.0.0.1:${fastifyPort}`
    const traffic = runTraffic([
      '--url', expressOrigin,
      '--url', fastifyOrigin,
      '--requests', String(REQUESTS),
      '--concurrency', '20',
      '--slow-share', '0.15',
    ])
    const expressProcessIds = await collectActiveProcessIds(redis.url, `127.0.0.1:${expressPort}`, 2, traffic)
    const summary = await traffic

    expect(expressProcessIds.size).toBeGreaterThanOrEqual(2)
    expect(summary.total).toBe(REQUESTS)
    expect(summary.byStatus.error).toBeUndefined()

    await waitForEmptyProcessors(redis)
    expect(await redis.client.hlen('processors')).toBe(0)
    const pastTasks = await readPastTasks(redis)
    expect(pastTasks).toHaveLength(Math.min(REQUESTS, MAX_COMPLETED_TASKS))
    expect(countTasksByRoute(pastTasks)).toEqual(countTrafficByRoute(summary))

    const slowDurations = pastTasks
      .filter((task) => task.path === '/slow')
      .map((task) => (parseIsoTime(task.ended_at) ?? 0) - (parseIsoTime(task.started_at) ?? 0))
    expect(slowDurations.length).toBeGreaterThan(0)
    for (const duration of slowDurations) expect(duration).toBeGreaterThanOrEqual(500)

    const processIdsOf = (port: number) =>
      new Set(pastTasks.filter((task) => task.host === `127.0.0.1:${port}`).map((task) => task.process_id))
    expect(processIdsOf(expressPort).size).toBe(2)
    expect(processIdsOf(fastifyPort).size).toBe(1)

    expect(await expressApp.stop()).toBe(0)
    expect(await fastifyApp.stop()).toBe(0)
    expect(await redis.client.hlen('processors')).toBe(0)
  }, 60_000)
})

/**
 * Runs `web-top-cli recent --mode active --json` until the active tasks of
 * `host` come from `wanted` distinct processes or the traffic ends, and
 * returns the process ids seen.
 */
async function collectActiveProcessIds(
  trackerUrl: string,
  host: string,
  wanted: number,
  traffic: Promise<unknown>,
): Promise<Set<number>> {
  let trafficDone = false
  void traffic.finally(() => (trafficDone = true)).catch(() => {})
  const seen = new Set<number>()

  while (!trafficDone && seen.size < wanted) {
    const result = await runCli(['recent', '--mode', 'active', '--json', '--tracker-url', trackerUrl])
    expect(result.code, result.stderr).toBe(0)
    const tasks = JSON.parse(result.stdout) as HttpTask[]
    for (const task of tasks) {
      if (task.host === host && typeof task.process_id === 'number') seen.add(task.process_id)
    }
  }
  return seen
}

/** Waits until the workers' last end records have reached Redis. */
async function waitForEmptyProcessors(redis: TestRedis, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((await redis.client.hlen('processors')) > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function readPastTasks(redis: TestRedis): Promise<HttpTask[]> {
  const texts = await redis.client.lrange('past_tasks', 0, -1)
  return texts.map((text) => {
    const result = decodeTask(text)
    if (!result.ok) throw new Error(`past_tasks holds an unreadable record (${result.reason}): ${text}`)
    return result.task
  })
}
