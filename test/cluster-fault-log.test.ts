/**
 * An Express app that records to a private Redis Cluster through a
 * `redis+cluster://` URL. When the master of the prefix's slot rejects
 * writes with OOM, the recorder probes no node. When that master and its
 * replica are killed while requests go on, the app keeps responding, and
 * its log names the node and the slot at fault, which the client's error
 * ("Too many Cluster redirections") does not.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { topMiddleware, type TopMiddleware } from '../src/adapters/express'
import { startRedisCluster, type TestCluster } from './helpers/redis-cluster'
import { waitUntil } from './helpers/redis-server'

const PREFIX = '{shop}:'

interface LogLine {
  fields: Record<string, unknown>
  message: string
}

let cluster: TestCluster
let server: Server
let middleware: TopMiddleware
let origin: string
const lines: LogLine[] = []

beforeAll(async () => {
  cluster = await startRedisCluster()
  const push = (fields: Record<string, unknown>, message: string) => lines.push({ fields, message })
  middleware = topMiddleware({
    trackerUrl: cluster.url,
    keyPrefix: PREFIX,
    logger: { warn: push, error: push, info: push },
  })
  const app = express()
  app.use(middleware)
  app.get('/hello', (_req, res) => {
    res.json({ ok: true })
  })
  server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}, 60_000)

afterAll(async () => {
  await middleware?.close()
  await new Promise((resolve) => server?.close(resolve))
  await cluster?.close()
})

describe('recording to a cluster whose master rejects writes', () => {
  it('probes no node for an out-of-memory error', async () => {
    const slot = await cluster.keySlot(`${PREFIX}processors`)
    const masterPort = await cluster.masterPortOf(slot)
    const master = cluster.nodes.find((node) => node.port === masterPort)
    const others = cluster.nodes.filter((node) => node.port !== masterPort)
    const probes = await watchProbes(others.map((node) => node.port))

    await master?.client.config('SET', 'maxmemory-policy', 'noeviction')
    await master?.client.config('SET', 'maxmemory', '1')
    try {
      // One request each 100 ms for 7 s: more than the 5 s after which a probe that found nothing runs again.
      const deadline = Date.now() + 7_000
      while (Date.now() < deadline) {
        expect((await fetch(`${origin}/hello`)).status).toBe(200)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }

      expect(lines.some((line) => /OOM/.test(String(line.fields.reason ?? line.fields.err)))).toBe(true)
      expect(await probes.count()).toBe(0)
      expect(lines.filter((line) => line.message === "redis cluster cannot serve the tracker's keys")).toEqual([])
    } finally {
      await master?.client.config('SET', 'maxmemory', '0')
    }
  }, 30_000)
})

describe('recording to a cluster that loses a slot', () => {
  it('logs the node and the slot at fault', async () => {
    expect((await fetch(`${origin}/hello`)).status).toBe(200)

    const slot = await cluster.keySlot(`${PREFIX}processors`)
    const masterPort = await cluster.masterPortOf(slot)
    const replicaPort = await cluster.replicaPortOf(masterPort)
    const probes = await watchProbes(
      cluster.nodes.map((node) => node.port).filter((port) => port !== masterPort && port !== replicaPort),
    )
    await cluster.kill(masterPort)
    await cluster.kill(replicaPort)

    const expected =
      `the cluster node 127.0.0.1:${masterPort} that serves slot ${slot} ` +
      `(the keys of keyPrefix "${PREFIX}") is not reachable`
    const statuses: number[] = []
    // One request each 100 ms, for 20 s at most, until the line is logged.
    await waitUntil('the log line of the cluster fault', 20_000, async () => {
      statuses.push((await fetch(`${origin}/hello`)).status)
      await new Promise((resolve) => setTimeout(resolve, 100))
      return lines.some((line) => String(line.fields.reason).includes(expected))
    })

    const faultLines = lines.filter((line) => String(line.fields.reason).includes(expected))
    expect(await probes.count()).toBeGreaterThan(0)
    expect(faultLines).toHaveLength(1)
    expect(faultLines[0]?.message).toBe("redis cluster cannot serve the tracker's keys")
    expect(String(faultLines[0]?.fields.reason)).toMatch(/Check the cluster with redis-cli -c -p \d+ cluster info/)
    expect(faultLines[0]?.fields.url).toBe(cluster.url)
    expect(statuses.length).toBeGreaterThan(0)
    expect(statuses.every((status) => status === 200)).toBe(true)
  }, 60_000)
})

/**
 * Counts the `CLUSTER NODES` commands that nodes receive from now on, by
 * the calls in their `INFO commandstats`. The cluster check sends them; the
 * cluster client refreshes its slots with `CLUSTER SLOTS` instead.
 */
async function watchProbes(ports: readonly number[]): Promise<{ count(): Promise<number> }> {
  const nodes = cluster.nodes.filter((node) => ports.includes(node.port))
  const callsOf = async () => {
    let calls = 0
    for (const node of nodes) {
      if (node.child.exitCode !== null || node.child.signalCode !== null) continue
      const stats = String(await node.client.info('commandstats'))
      calls += Number(/cmdstat_cluster\|nodes:calls=(\d+)/.exec(stats)?.[1] ?? 0)
    }
    return calls
  }
  const before = await callsOf()
  return { count: async () => (await callsOf()) - before }
}
