/**
 * `web-top-cli` on a private Redis Cluster whose master and replica for the
 * slot of the prefix are both down: each command names the node and the
 * slot, and the redis-cli commands to check the cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTrackerFromUrl } from '../src/trackers/from-url'
import { describeError } from '../src/cli/cli-error'
import { runCli } from './helpers/cli'
import { startRedisCluster, type TestCluster } from './helpers/redis-cluster'

const PREFIX = '{shop}:'

let cluster: TestCluster
let slot = 0
let masterPort = 0
let replicaPort = 0

beforeAll(async () => {
  cluster = await startRedisCluster()
  const writer = createTrackerFromUrl(cluster.url, { keyPrefix: PREFIX })
  const nowIso = new Date().toISOString()
  writer.recordEnd('p-done', JSON.stringify({ task_id: 'done', method: 'GET', path: '/done', started_at: nowIso, ended_at: nowIso }))
  await writer.flush()
  await writer.close()

  slot = await cluster.keySlot(`${PREFIX}processors`)
  masterPort = await cluster.masterPortOf(slot)
  replicaPort = await cluster.replicaPortOf(masterPort)
  await cluster.kill(masterPort)
  await cluster.kill(replicaPort)
  // Until the other nodes flag both as failed, a read may still find them listed as up.
  await cluster.waitForNodeFlags([masterPort, replicaPort], 'fail')
}, 90_000)

afterAll(async () => {
  await cluster?.close()
})

function expectClusterMessage(stderr: string): void {
  expect(stderr.trimEnd().split('\n')).toHaveLength(1)
  expect(stderr).toContain(
    `the cluster node 127.0.0.1:${masterPort} that serves slot ${slot} (the keys of --prefix "${PREFIX}") ` +
      `is not reachable, and its replica 127.0.0.1:${replicaPort} is not reachable either. ` +
      'Check the cluster with redis-cli -c -p ',
  )
  expect(stderr).toMatch(/redis-cli -c -p \d+ cluster info and redis-cli -c -p \d+ cluster nodes\n$/)
  expect(stderr).not.toContain('redis+cluster://host')
  expect(stderr).not.toContain('CLIENT PAUSE')
  expect(stderr).not.toContain('Connection is closed')
}

describe('web-top-cli on a cluster whose slot is down', () => {
  it('tail names the node and the slot, or follows the stream', async () => {
    // tail fails at connecting when its PING goes to a node that is down. It
    // reads no slot before a gap in the stream, which any node serves, so it
    // may also start and follow the stream.
    const result = await runCli(['tail', '--tracker-url', cluster.url, '--prefix', PREFIX], {
      timeoutMs: 20_000,
      interruptAfterMs: 8_000,
    })

    if (result.code === 130) {
      expect(result.stderr).toBe('')
    } else {
      expect(result.code).toBe(1)
      expectClusterMessage(result.stderr)
    }
  })

  it.each([['check'], ['recent'], ['prune'], ['live']])('%s names the node and the slot', async (command) => {
    const result = await runCli([command, '--tracker-url', cluster.url, '--prefix', PREFIX], { timeoutMs: 20_000 })

    expect(result.code).toBe(1)
    expectClusterMessage(result.stderr)
  })

  it('prefixes names the master that is down', async () => {
    const result = await runCli(['prefixes', '--tracker-url', cluster.url], { timeoutMs: 20_000 })

    expect(result.code).toBe(1)
    // The connection fails first when its PING goes to the node that is down.
    expect(result.stderr).toMatch(
      new RegExp(
        `^web-top-cli: (?:Cannot list prefixes|Cannot connect to the tracker) at \\S+: the cluster node 127\\.0\\.0\\.1:${masterPort}, a master, ` +
          'is not reachable\\. Check the cluster with redis-cli -c -p \\d+ cluster info',
      ),
    )
  })
})

describe('describeError', () => {
  it('writes a cause equal to the message once', () => {
    // ioredis fails a cluster command with the error of its last node, whose message may be the same.
    const error = Object.assign(new Error('Connection is closed.'), { lastNodeError: new Error('Connection is closed.') })

    expect(describeError(error)).toBe('Connection is closed.')
  })

  it('keeps a cause that differs', () => {
    const error = Object.assign(new Error('Failed to refresh slots cache.'), {
      lastNodeError: new Error('connect ECONNREFUSED 127.0.0.1:1'),
    })

    expect(describeError(error)).toBe('Failed to refresh slots cache. (connect ECONNREFUSED 127.0.0.1:1)')
  })
})
