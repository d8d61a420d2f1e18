/**
 * End to end on a private Redis Sentinel setup (a master, a replica and two
 * Sentinels): an Express app records through a `redis+sentinel://` URL,
 * follows a failover, and skips a frozen Sentinel, and the CLI reads the
 * same URL.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { runCli, startCli } from './helpers/cli'
import { sendRequest, startApp, type TestApp } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { ONE_REQUEST_EXPRESS_SCRIPT, runNode } from './helpers/node-process'
import { readStoredTasks, waitUntil } from './helpers/redis-server'
import {
  MASTER_NAME,
  SENTINEL_WAIT_MS,
  startRedisSentinel,
  type SetupNode,
  type TestSentinel,
} from './helpers/redis-sentinel'

/**
 * Maximum time from the end of a failover to the first record on the new
 * master. Redis 7.0's Sentinel turns the old master into a replica, and
 * closes its client connections, no sooner than 8 s after the failover, so
 * a client that waits for that close cannot pass.
 */
const FOLLOW_FAILOVER_MS = 5_000

let setup: TestSentinel
let app: TestApp | undefined

beforeAll(async () => {
  setup = await startRedisSentinel(2)
}, SENTINEL_WAIT_MS + 10_000)

afterEach(async () => {
  await app?.close()
  app = undefined
})

afterAll(async () => {
  await setup?.close()
})

/** Returns a path prefix of its own for each run of a test, so that a retry on CI does not see the first run's records. */
function uniquePrefix(name: string): string {
  return `/${name}-${randomUUID().slice(0, 8)}`
}

/** Returns the URL that names only the Sentinels at `indexes`, in that order. */
function sentinelUrl(...indexes: number[]): string {
  const hosts = indexes.map((index) => `127.0.0.1:${(setup.sentinels[index] as SetupNode).port}`)
  return `redis+sentinel://${hosts.join(',')}/${MASTER_NAME}`
}

async function currentMaster(): Promise<SetupNode> {
  return setup.node(await setup.masterPort())
}

/** Returns the paths in the current master's `past_tasks`. */
async function storedPaths(master: SetupNode): Promise<Set<string>> {
  const stored = await readStoredTasks(master.client)
  return new Set(stored.pastTasks.map((task) => task.path ?? ''))
}

/** Runs `recent --json` on `url` and returns the paths it prints. */
async function readPathsWithCli(url: string): Promise<string[]> {
  const result = await runCli(['recent', '--json', '--tracker-url', url], { timeoutMs: 20_000 })
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  return (JSON.parse(result.stdout) as HttpTask[]).map((task) => task.path ?? '')
}

describe('redis+sentinel:// tracker URL', () => {
  it('records to the master and the CLI reads them', async () => {
    const url = sentinelUrl(0)
    const prefix = uniquePrefix('record')
    const master = await currentMaster()
    app = await startApp('express5', { trackerUrl: url, logger: captureLogger() })

    for (let i = 1; i <= 3; i++) expect((await sendRequest(`${app.url}/users${prefix}-${i}`)).status).toBe(200)
    const waiting = sendRequest(`${app.url}/wait`)
    await waitUntil('the records on the master', SENTINEL_WAIT_MS, async () => {
      const stored = await readStoredTasks(master.client)
      return stored.pastTasks.some((task) => task.path === `/users${prefix}-3`) && Object.keys(stored.processors).length === 1
    })

    const stored = await readStoredTasks(master.client)
    const recorded = stored.pastTasks.map((task) => task.path ?? '').filter((path) => path.startsWith(`/users${prefix}-`))
    expect(recorded).toEqual([`/users${prefix}-3`, `/users${prefix}-2`, `/users${prefix}-1`])
    expect(Object.values(stored.processors).map((task) => task.path)).toEqual(['/wait'])

    const paths = await readPathsWithCli(url)
    expect(paths[0]).toBe('/wait')
    expect(paths).toContain(`/users${prefix}-1`)
    expect(paths).toContain(`/users${prefix}-3`)

    app.releaseWaiting()
    expect((await waiting).status).toBe(200)
  })

  it('lets the process exit after close', async () => {
    const nodeArgs = ['--import', 'tsx', '-e', ONE_REQUEST_EXPRESS_SCRIPT]
    const started = Date.now()
    const result = await runNode(nodeArgs, { TEST_REDIS_URL: sentinelUrl(0) }, 20_000)
    expect(result.stdout.trim()).toBe('closed')
    expect(result.code).toBe(0)
    // Start-up of Node with tsx takes most of it; a connection left open keeps the process for good.
    expect(Date.now() - started).toBeLessThan(15_000)
  }, 30_000)

  it('records on the new master soon after a failover', async () => {
    const url = sentinelUrl(0)
    const prefix = uniquePrefix('failover')
    app = await startApp('express5', { trackerUrl: url, logger: captureLogger() })
    const appUrl = app.url
    const pathOf = (index: number) => `/users${prefix}-${index}`
    const tailShows = (index: number) => tail.stdout().includes(`GET ${pathOf(index)} `)
    const tail = startCli(['tail', '--tracker-url', url])

    // Requests one after another, each with its own path, until stopped or 60 s have passed.
    const sentAt: number[] = []
    const statuses: number[] = []
    let stopped = false
    const traffic = (async () => {
      const endAt = Date.now() + 60_000
      while (!stopped && Date.now() < endAt) {
        sentAt.push(Date.now())
        const response = await sendRequest(`${appUrl}${pathOf(sentAt.length - 1)}`)
        statuses.push(response.status)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    })()

    try {
      const oldMaster = await currentMaster()
      await waitUntil('records on the first master', SENTINEL_WAIT_MS, async () =>
        (await storedPaths(oldMaster)).has(pathOf(5)),
      )
      await tail.waitFor((stdout) => stdout.includes(`GET /users${prefix}-`), 'a request before the failover', SENTINEL_WAIT_MS)

      const newMaster = setup.node(await setup.failover())
      const knownAt = Date.now()
      const firstAfterFailover = sentAt.length
      expect(newMaster.port).not.toBe(oldMaster.port)

      // The first request sent after the Sentinels named the new master, and stored there.
      let landedAt = 0
      await waitUntil('a request sent after the failover on the new master', SENTINEL_WAIT_MS, async () => {
        const paths = await storedPaths(newMaster)
        const landed = sentAt.some((_at, index) => index >= firstAfterFailover && paths.has(pathOf(index)))
        if (landed) landedAt = Date.now()
        return landed
      })
      expect(landedAt - knownAt).toBeLessThan(FOLLOW_FAILOVER_MS)

      // Every request sent from now on must be stored on the new master.
      const firstChecked = sentAt.length
      await waitUntil('more requests', SENTINEL_WAIT_MS, async () => sentAt.length >= firstChecked + 50)
      stopped = true
      await traffic
      const lastSent = sentAt.length - 1

      await waitUntil('the last request on the new master', SENTINEL_WAIT_MS, async () =>
        (await storedPaths(newMaster)).has(pathOf(lastSent)),
      )
      const paths = await storedPaths(newMaster)
      const missing: number[] = []
      for (let index = firstChecked; index <= lastSent; index++) {
        if (!paths.has(pathOf(index))) missing.push(index)
      }
      expect(missing).toEqual([])
      expect(statuses.filter((status) => status !== 200)).toEqual([])

      const cliPaths = await readPathsWithCli(url)
      expect(cliPaths).toContain(pathOf(lastSent))

      // tail's subscriber connection follows the failover too.
      await tail.waitFor(() => tailShows(lastSent), 'the last request', SENTINEL_WAIT_MS)
      const notShown: number[] = []
      for (let index = firstChecked; index <= lastSent; index++) {
        if (!tailShows(index)) notShown.push(index)
      }
      expect(notShown).toEqual([])
    } finally {
      stopped = true
      await traffic
      await tail.stop()
    }
  }, 120_000)

  it('skips a frozen first Sentinel', async () => {
    const url = sentinelUrl(0, 1)
    const prefix = uniquePrefix('frozen')
    setup.freezeSentinel(0)
    try {
      const master = setup.node(await setup.masterPort(1))
      app = await startApp('express5', { trackerUrl: url, logger: captureLogger() })
      for (let i = 1; i <= 3; i++) expect((await sendRequest(`${app.url}/users${prefix}-${i}`)).status).toBe(200)

      await waitUntil('the records on the master', 20_000, async () => (await storedPaths(master)).has(`/users${prefix}-3`))

      const started = Date.now()
      const paths = await readPathsWithCli(url)
      expect(paths).toContain(`/users${prefix}-3`)
      expect(Date.now() - started).toBeLessThan(10_000)

      const frozenOnly = sentinelUrl(0)
      const failed = await runCli(['recent', '--tracker-url', frozenOnly], { timeoutMs: 20_000 })
      expect(failed.code).toBe(1)
      expect(failed.stderr).toContain(`web-top-cli: Cannot connect to the tracker at ${frozenOnly}: `)
      expect(failed.stderr).toContain('All sentinels are unreachable and retry is disabled. Last error: Command timed out.')
      expect(failed.stderr).toContain('Check that the Sentinels in the URL are running, reply within 2 s')
      expect(failed.stderr.trim().split('\n')).toHaveLength(1)
    } finally {
      setup.thawSentinel(0)
    }
  }, 60_000)
})
