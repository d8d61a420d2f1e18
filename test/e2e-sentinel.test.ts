/**
 * End to end on a private Redis Sentinel setup (a master, a replica and two
 * Sentinels): an Express app records through a `redis+sentinel://` URL,
 * follows a failover and skips a frozen Sentinel. The CLI reads the same
 * URL, and neither prints ioredis errors when a frozen Sentinel is killed.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { runCli, startCli, type RunningCli } from './helpers/cli'
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

/** Requests sent to an app one after another, each to its own path. */
interface Traffic {
  /** Send time of each request, in `Date.now()` milliseconds, by index. */
  sentAt: number[]
  /** Response status of each request that has completed, by index. */
  statuses: number[]
  /** Stops sending and resolves once the request in flight has completed. */
  stop(): Promise<void>
}

/** Sends requests to `appUrl` + `pathOf(index)` until stopped or `limitMs` has passed. */
function startTraffic(appUrl: string, pathOf: (index: number) => string, limitMs: number): Traffic {
  const sentAt: number[] = []
  const statuses: number[] = []
  let stopped = false
  const sending = (async () => {
    const endAt = Date.now() + limitMs
    while (!stopped && Date.now() < endAt) {
      sentAt.push(Date.now())
      const response = await sendRequest(`${appUrl}${pathOf(sentAt.length - 1)}`)
      statuses.push(response.status)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()

  return {
    sentAt,
    statuses,
    async stop() {
      stopped = true
      await sending
    },
  }
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
    const traffic = startTraffic(appUrl, pathOf, 60_000)
    const { sentAt, statuses } = traffic

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
      await traffic.stop()
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
      await traffic.stop()
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

  it('ignores the reset of a killed frozen Sentinel', async () => {
    // Kills a Sentinel, so it runs on a setup of its own.
    const own = await startRedisSentinel(2)
    const prefix = uniquePrefix('killed')
    const pathOf = (index: number) => `/users${prefix}-${index}`
    const consoleError = vi.spyOn(console, 'error')
    let tail: RunningCli | undefined
    let traffic: Traffic | undefined

    try {
      own.freezeSentinel(0)
      app = await startApp('express5', { trackerUrl: own.url, logger: captureLogger() })
      const appUrl = app.url
      const runningTail = startCli(['tail', '--tracker-url', own.url])
      tail = runningTail

      const runningTraffic = startTraffic(appUrl, pathOf, 120_000)
      traffic = runningTraffic
      const { sentAt, statuses } = runningTraffic

      /** Waits until a request sent from now on is stored on `master` and shown by tail. */
      const waitForNewRequest = async (master: SetupNode, description: string) => {
        const first = sentAt.length
        await waitUntil(`${description} on the master`, SENTINEL_WAIT_MS, async () => {
          const paths = await storedPaths(master)
          return sentAt.some((_at, index) => index >= first && paths.has(pathOf(index)))
        })
        const shownByTail = (stdout: string) =>
          sentAt.some((_at, index) => index >= first && stdout.includes(`GET ${pathOf(index)} `))
        await runningTail.waitFor(shownByTail, description, SENTINEL_WAIT_MS)
      }

      await waitForNewRequest(own.node(await own.masterPort(1)), 'a request before the failover')
      // Both the app's client and tail's clients reconnect to the new master and subscribe
      // to each Sentinel again, so their new connections to the frozen Sentinel wait unread.
      const newMaster = own.node(await own.failover(1))
      await waitForNewRequest(newMaster, 'a request after the failover')

      await own.killSentinel(0)
      await waitForNewRequest(newMaster, 'a request after the kill')
      await runningTraffic.stop()

      const printed = consoleError.mock.calls.map((call) => call.map(String).join(' '))
      expect.soft(printed.filter((line) => line.includes('Unhandled error event'))).toEqual([])
      expect.soft(runningTail.stderr()).not.toContain('Unhandled error event')
      expect(statuses.filter((status) => status !== 200)).toEqual([])
    } finally {
      consoleError.mockRestore()
      await traffic?.stop()
      await tail?.stop()
      await app?.close()
      app = undefined
      await own.close()
    }
  }, 240_000)
})
