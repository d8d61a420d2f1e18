/**
 * `web-top-cli` reading a private Redis Cluster through a
 * `redis+cluster://` URL, as the library's cluster support writes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { createTrackerFromUrl } from '../src/trackers/from-url'
import { createRedisClient } from '../src/trackers/redis-connection'
import { RedisTracker } from '../src/trackers/redis-tracker'
import type { Tracker } from '../src/trackers/tracker'
import { runCli, startCli } from './helpers/cli'
import { waitFor } from './helpers/http'
import { startRedisCluster, type TestCluster } from './helpers/redis-cluster'
import { findFreePort } from './helpers/redis-server'
import { captureLogger } from './helpers/logger'

const PREFIX = '{shop}:'

let cluster: TestCluster
let writer: Tracker

beforeAll(async () => {
  cluster = await startRedisCluster()
  writer = createTrackerFromUrl(cluster.url, { keyPrefix: PREFIX })
  writer.recordStart('p-active', JSON.stringify(record('/cluster/active', false)))
  writer.recordEnd('p-done', JSON.stringify(record('/cluster/done', true)))
  await writer.flush()
}, 60_000)

afterAll(async () => {
  await writer?.close()
  await cluster?.close()
})

describe('web-top-cli on Redis Cluster', () => {
  it('reads active and completed tasks', async () => {
    const result = await runCli(['recent', '--tracker-url', cluster.url, '--prefix', PREFIX, '--json'])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const records = JSON.parse(result.stdout) as HttpTask[]
    expect(records.map((task) => task.path)).toEqual(['/cluster/active', '/cluster/done'])
  })

  it('follows task_updates with tail', async () => {
    const tail = startCli(['tail', '--tracker-url', cluster.url, '--prefix', PREFIX])
    try {
      await new Promise((resolveWait) => setTimeout(resolveWait, 1_500))
      writer.recordEnd('p-new', JSON.stringify(record('/cluster/new', true)))
      await writer.flush()
      await tail.waitFor((stdout) => stdout.includes('/cluster/new'), 'the new request')
    } finally {
      await tail.stop()
    }
  })

  it('lists prefixes with no --prefix', async () => {
    const result = await runCli(['prefixes', '--tracker-url', cluster.url])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    // The tail test before this one adds a completed task.
    expect(result.stdout).toMatch(/^"\{shop\}:" {2}1 active {2}\d+ completed\n$/)

    const all = await runCli(['recent', '--all-prefixes', '--tracker-url', cluster.url, '--json'])
    expect(all.stderr).toBe('')
    expect(all.code).toBe(0)
    expect(all.stdout).toContain('/cluster/done')
  })

  it('lists a prefix without a hash tag', async () => {
    // Keys without a hash tag, as a writer that ignores the cluster rule makes them, on two slots.
    const client = createRedisClient(cluster.url)
    try {
      await client.hset('processors', 'py-1', JSON.stringify(record('/python/active', false)))
      await client.lpush('past_tasks', JSON.stringify(record('/python/done', true)))

      const result = await runCli(['prefixes', '--tracker-url', cluster.url])
      expect(result.stderr).toBe('')
      expect(result.code).toBe(0)
      expect(result.stdout.split('\n')[0]).toBe('(no prefix)  1 active  1 completed')
      expect(result.stdout.split('\n')[1]).toBe('"{shop}:"    1 active  2 completed')

      const all = await runCli(['recent', '--all-prefixes', '--tracker-url', cluster.url])
      expect(all.code).toBe(1)
      expect(all.stderr).toContain('(no prefix): not printed')
      expect(all.stderr).toContain('hash tag')
      // It names no option, because the user passed none.
      expect(all.stderr).not.toContain('--prefix')
      expect(all.stdout).not.toContain('== (no prefix) ==')
      expect(all.stdout).toContain('/cluster/done')
    } finally {
      await client.del('processors')
      await client.del('past_tasks')
      client.disconnect()
    }
  })

  it('points a one-node URL at the cluster', async () => {
    const other = await findNodeAwayFromPrefix()
    const result = await runCli(['recent', '--tracker-url', `redis://127.0.0.1:${other}`, '--prefix', PREFIX])

    expect(result.code).toBe(1)
    expect(result.stderr).toContain('MOVED')
    expect(result.stderr).toContain('redis+cluster://host:port,host:port')
    expect(result.stderr).not.toContain('ACL')
  })

  it('names why no cluster node answered', async () => {
    // A port that this test just found free, where nothing listens.
    const closedPort = await findFreePort()
    const url = `redis+cluster://127.0.0.1:${closedPort}`
    const result = await runCli(['recent', '--tracker-url', url, '--prefix', PREFIX])

    expect(result.code).toBe(1)
    // The error of the last node tried, which ioredis keeps apart from the message.
    expect(result.stderr).toContain('Failed to refresh slots cache. (Connection is closed.)')
    expect(result.stderr).toContain('for example redis+cluster://127.0.0.1:7000,127.0.0.1:7001')
  })

  it('tells a recorder on one node to use the cluster', async () => {
    const other = await findNodeAwayFromPrefix()
    const logger = captureLogger()
    const lines = logger.lines
    const tracker = new RedisTracker({ url: `redis://127.0.0.1:${other}`, keyPrefix: PREFIX, logger })
    try {
      tracker.recordStart('p-moved', JSON.stringify(record('/moved', false)))
      tracker.recordEnd('p-moved', JSON.stringify(record('/moved', true)))
      const failure = await waitFor('the failed write', () =>
        lines.find((line) => line.message === 'redis write failed, records dropped'),
      )
      expect(String(failure.fields.hint)).toContain('redis+cluster://')
      expect(tracker.stats().dropped).toBe(2)
    } finally {
      await tracker.close()
    }
  })

  it('rejects a prefix without a hash tag with exit code 2', async () => {
    const result = await runCli(['recent', '--tracker-url', cluster.url, '--prefix', 'shop:'])
    expect(result.code).toBe(2)
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain('--prefix')
    expect(result.stderr).toContain('hash tag')
  })
})

function record(path: string, ended: boolean): HttpTask {
  const now = Date.now()
  return {
    task_id: `cluster-${path}`,
    started_at: formatIsoTime(now - 10),
    ended_at: ended ? formatIsoTime(now) : null,
    method: 'GET',
    path,
    status_code: ended ? 200 : null,
  }
}

/** Returns the port of a node that does not serve the slot of PREFIX, so it replies MOVED for its keys. */
async function findNodeAwayFromPrefix(): Promise<number> {
  const owner = await cluster.masterPortOf(await cluster.keySlot(`${PREFIX}processors`))
  const other = cluster.nodes.find((node) => node.port !== owner)
  if (other === undefined) throw new Error('the test cluster has no node besides the master of the prefix slot')
  return other.port
}

// Last in this file: it stops every node of the shared cluster.
describe('web-top-cli when the whole cluster stops', () => {
  it('tail reports the lost stream', async () => {
    const tail = startCli(['tail', '--tracker-url', cluster.url, '--prefix', PREFIX])
    try {
      await new Promise((resolveWait) => setTimeout(resolveWait, 1_500))
      for (const node of cluster.nodes) await cluster.kill(node.port)

      await tail.waitFor((_stdout, stderr) => stderr.includes('update stream lost'), 'the lost stream', 10_000)
      expect(tail.stderr()).toMatch(/^web-top-cli: update stream lost \(.+\); reconnecting\n$/)
      // ioredis's subscriber re-selection adds socket listeners during the
      // outage; Node would warn about them within a few seconds.
      await new Promise((resolveWait) => setTimeout(resolveWait, 8_000))
      expect(tail.stderr()).not.toContain('MaxListenersExceededWarning')
      expect(tail.stderr().match(/update stream lost/g)).toHaveLength(1)
    } finally {
      await tail.stop()
    }
  }, 30_000)
})
