/**
 * `web-top-cli tail` as a child process while its private Redis is paused
 * (SIGSTOP): the connection stays open and no command gets a reply, so no
 * `close` tells the client. tail must say within a few seconds that the
 * update stream is lost, say it once, and after the thaw say how long the
 * gap was and print what was published meanwhile, once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { STREAM_PROBE_INTERVAL_MS, STREAM_REPLY_TIMEOUT_MS } from '../src/cli/update-stream'
import { startCli, type RunningCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

/**
 * Maximum time from the freeze to the notice: a PING goes out within one
 * probe interval and counts as unanswered after the reply timeout. Two
 * seconds more leave room for a loaded machine.
 */
const MAX_NOTICE_MS = STREAM_PROBE_INTERVAL_MS + STREAM_REPLY_TIMEOUT_MS + 2_000

/** How long Redis stays frozen after the notice, so that further probes would have repeated it. */
const FROZEN_AFTER_NOTICE_MS = 3 * STREAM_PROBE_INTERVAL_MS + STREAM_REPLY_TIMEOUT_MS

const LOST_LINE = /^web-top-cli: update stream lost \(no reply to PING within \d+ s\); reconnecting$/m
const GAP_LINE = /^web-top-cli: reconnected after a gap of (\d+\.\d+)s; \d+ requests? read back from past_tasks$/m

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  redis?.thaw()
  await redis?.close()
})

describe('tail while Redis is paused', () => {
  it('reports the pause once, then the gap', { timeout: 60_000 }, async () => {
    const tail = await startTail()
    let frozenMs: number | undefined
    try {
      await publishUntilPrinted(tail, '/before-pause')

      redis.freeze()
      frozenMs = Date.now()
      // The test's client waits for the frozen server, which runs the PUBLISH once thawed.
      const duringPause = redis.client.publish('task_updates', completedRecord('/during-pause'))
      await tail.waitFor((_stdout, stderr) => stderr.includes('update stream lost'), 'the lost stream', 15_000)
      const noticeMs = Date.now() - frozenMs
      await sleep(FROZEN_AFTER_NOTICE_MS)
      const stderrWhileFrozen = tail.stderr()
      redis.thaw()
      const thawedMs = Date.now()
      await duringPause

      await tail.waitFor((_stdout, stderr) => GAP_LINE.test(stderr), 'the end of the gap', 15_000)
      await publishUntilPrinted(tail, '/after-pause')

      expect(noticeMs).toBeLessThan(MAX_NOTICE_MS)
      expect(stderrWhileFrozen).toMatch(LOST_LINE)
      expect(tail.stderr().match(/update stream lost/g)).toHaveLength(1)
      // The gap counts from the unanswered PING, sent within a probe interval of the freeze.
      const gapSeconds = Number(GAP_LINE.exec(tail.stderr())?.[1])
      expect(gapSeconds).toBeGreaterThanOrEqual((thawedMs - frozenMs - STREAM_PROBE_INTERVAL_MS) / 1000)
      expect(tail.stdout().match(/\/during-pause/g)).toHaveLength(1)
    } finally {
      redis.thaw()
      expect(await tail.stop()).toBe(130)
    }
  })
})

/** Starts `tail` and waits until it has subscribed to task_updates. */
async function startTail(): Promise<RunningCli> {
  const tail = startCli(['tail', '--tracker-url', redis.url])
  const deadline = Date.now() + 15_000
  while ((await countSubscribers()) === 0) {
    if (Date.now() > deadline) throw new Error(`tail did not subscribe to task_updates:\n${tail.stderr()}`)
    await sleep(25)
  }
  return tail
}

/** Publishes a completed request, and publishes it again until tail prints it. */
async function publishUntilPrinted(tail: RunningCli, path: string): Promise<void> {
  const message = completedRecord(path)
  const deadline = Date.now() + 15_000
  while (!tail.stdout().includes(path)) {
    if (Date.now() > deadline) throw new Error(`tail did not print ${path} within 15 s:\n${tail.stderr()}`)
    await redis.client.publish('task_updates', message)
    await sleep(250)
  }
}

/** Returns the JSON of a completed request that ends now. */
function completedRecord(path: string): string {
  const now = new Date().toISOString()
  return JSON.stringify({ task_id: path, method: 'GET', path, status_code: 200, started_at: now, ended_at: now })
}

async function countSubscribers(): Promise<number> {
  const [, count] = (await redis.client.pubsub('NUMSUB', 'task_updates')) as [string, number]
  return count
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
