/**
 * Starts a private Redis Cluster on free loopback ports: three masters with
 * one replica each, made with `redis-cli --cluster create`. A test can kill
 * the master of a key's slot and wait for its replica to take over.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Redis from 'ioredis'
import { findFreePort, waitUntil } from './redis-server'

const execFileAsync = promisify(execFile)

const MASTERS = 3
const REPLICAS_PER_MASTER = 1

/** Milliseconds without a reply after which the cluster marks a node failed and fails over. */
export const CLUSTER_NODE_TIMEOUT_MS = 2_000

export interface ClusterNodeProcess {
  port: number
  child: ChildProcess
  /** A plain (non-cluster) connection to this node, for CLUSTER commands. */
  client: Redis
}

export interface TestCluster {
  /** `redis+cluster://127.0.0.1:p1,…` with every node as a seed. */
  url: string
  nodes: ClusterNodeProcess[]
  /** Returns the slot of a key (`CLUSTER KEYSLOT`). */
  keySlot(key: string): Promise<number>
  /** Returns the port of the master that serves a slot now, as a node still running reports it. */
  masterPortOf(slot: number): Promise<number>
  /** Waits until the master on `port` has a replica, and returns the replica's port; 20 s at most. */
  replicaPortOf(port: number): Promise<number>
  /** Waits until a running node lists every node of `ports` with `flag`, such as `fail`; 20 s at most. */
  waitForNodeFlags(ports: readonly number[], flag: string): Promise<void>
  /** Kills the node on `port` with SIGKILL, as a crash would. */
  kill(port: number): Promise<void>
  /** Resolves when every running node reports `cluster_state:ok`; rejects after `timeoutMs`. */
  waitForStateOk(timeoutMs: number): Promise<void>
  /** Stops every node and removes the data folder. */
  close(): Promise<void>
}

export async function startRedisCluster(): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'web-top-cluster-'))
  const nodes: ClusterNodeProcess[] = []
  const killAll = () => {
    for (const node of nodes) if (node.child.exitCode === null) node.child.kill('SIGKILL')
  }
  process.once('exit', killAll)

  try {
    for (let i = 0; i < MASTERS * (1 + REPLICAS_PER_MASTER); i++) nodes.push(await startNode(dir))
    await createCluster(nodes.map((node) => node.port))
  } catch (error) {
    killAll()
    for (const node of nodes) node.client.disconnect()
    rmSync(dir, { recursive: true, force: true })
    throw error
  }

  const running = () => nodes.filter((node) => node.child.exitCode === null && node.child.signalCode === null)
  const cluster: TestCluster = {
    url: `redis+cluster://${nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`,
    nodes,
    keySlot: async (key) => Number(await firstOf(running()).client.cluster('KEYSLOT', key)),
    masterPortOf: async (slot) => readMasterPort(firstOf(running()).client, slot),
    replicaPortOf: (port) => waitForReplicaOf(() => otherNode(running(), [port]), port),
    waitForNodeFlags: (ports, flag) => waitForNodeFlags(() => otherNode(running(), ports), ports, flag),
    async kill(port) {
      const node = nodes.find((candidate) => candidate.port === port)
      if (node === undefined) throw new Error(`no cluster node on port ${port}`)
      node.client.disconnect()
      const exited = new Promise((resolve) => node.child.once('exit', resolve))
      node.child.kill('SIGKILL')
      await exited
    },
    waitForStateOk: (timeoutMs) => waitForStateOk(running(), timeoutMs),
    async close() {
      process.off('exit', killAll)
      for (const node of nodes) node.client.disconnect()
      await Promise.all(nodes.map((node) => stopNode(node.child)))
      rmSync(dir, { recursive: true, force: true })
    },
  }
  await cluster.waitForStateOk(20_000)
  return cluster
}

/**
 * Starts one cluster-enabled node. The cluster bus gets its own free port,
 * because the default (data port + 10000) can be past 65535 or taken.
 * A replica may always fail over (validity factor 0), and the masters left
 * keep serving their slots while one slot range has no master
 * (full coverage off), so one app's outage does not stop the others.
 */
async function startNode(dir: string): Promise<ClusterNodeProcess> {
  const port = await findFreePort()
  const busPort = await findFreePort()
  const nodeDir = join(dir, String(port))
  mkdirSync(nodeDir)

  const child = spawn(
    'redis-server',
    [
      '--port', String(port),
      '--cluster-port', String(busPort),
      '--bind', '127.0.0.1',
      '--cluster-enabled', 'yes',
      '--cluster-config-file', join(nodeDir, 'nodes.conf'),
      '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS),
      '--cluster-replica-validity-factor', '0',
      '--cluster-require-full-coverage', 'no',
      '--save', '',
      '--appendonly', 'no',
      '--dir', nodeDir,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100 })
  client.on('error', () => {})
  await waitUntil(`redis-server on port ${port}`, 10_000, async () => (await client.ping()) === 'PONG')
  return { port, child, client }
}

async function createCluster(ports: number[]): Promise<void> {
  const addresses = ports.map((port) => `127.0.0.1:${port}`)
  const args = ['--cluster', 'create', ...addresses, '--cluster-replicas', String(REPLICAS_PER_MASTER), '--cluster-yes']
  try {
    await execFileAsync('redis-cli', args, { timeout: 30_000 })
  } catch (error) {
    const output = error as { stdout?: string; stderr?: string }
    throw new Error(`redis-cli --cluster create failed: ${output.stderr ?? ''}${output.stdout ?? ''}`)
  }
}

/** Reads `CLUSTER SLOTS` and returns the port of the master of the range that contains `slot`. */
async function readMasterPort(client: Redis, slot: number): Promise<number> {
  const ranges = (await client.cluster('SLOTS')) as unknown as Array<[number, number, [string, number, ...unknown[]]]>
  const range = ranges.find(([first, last]) => slot >= first && slot <= last)
  if (range === undefined) throw new Error(`no node serves slot ${slot}`)
  return range[2][1]
}

/** Returns a running node that is not on one of `ports`, to send CLUSTER NODES to. */
function otherNode(running: ClusterNodeProcess[], ports: readonly number[]): ClusterNodeProcess {
  const node = running.find((candidate) => !ports.includes(candidate.port))
  if (node === undefined) throw new Error('no other cluster node is running')
  return node
}

/** Reads CLUSTER NODES as arrays of fields. */
async function readClusterNodes(node: ClusterNodeProcess): Promise<string[][]> {
  const text = (await node.client.cluster('NODES')) as unknown as string
  return text
    .trim()
    .split('\n')
    .map((line) => line.split(' '))
}

async function waitForReplicaOf(pickNode: () => ClusterNodeProcess, port: number): Promise<number> {
  let replicaPort: number | undefined
  await waitUntil(`a replica of the master on port ${port}`, 20_000, async () => {
    const nodes = await readClusterNodes(pickNode())
    const masterId = nodes.find((fields) => fields[1]?.startsWith(`127.0.0.1:${port}@`))?.[0]
    const replica = nodes.find((fields) => masterId !== undefined && fields[3] === masterId)
    replicaPort = replica === undefined ? undefined : Number(replica[1]?.split(/[:@]/)[1])
    return replicaPort !== undefined
  })
  if (replicaPort === undefined) throw new Error(`the master on port ${port} has no replica`)
  return replicaPort
}

async function waitForNodeFlags(pickNode: () => ClusterNodeProcess, ports: readonly number[], flag: string): Promise<void> {
  await waitUntil(`ports ${ports.join(', ')} flagged ${flag}`, 20_000, async () => {
    const nodes = await readClusterNodes(pickNode())
    return ports.every((port) =>
      nodes.some((fields) => fields[1]?.startsWith(`127.0.0.1:${port}@`) && fields[2]?.split(',').includes(flag)),
    )
  })
}

async function waitForStateOk(nodes: ClusterNodeProcess[], timeoutMs: number): Promise<void> {
  await waitUntil('cluster_state:ok on every node', timeoutMs, async () => {
    const infos = await Promise.all(nodes.map((node) => node.client.cluster('INFO') as Promise<string>))
    return infos.every((info) => info.includes('cluster_state:ok'))
  })
}

async function stopNode(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

function firstOf<T>(items: T[]): T {
  const first = items[0]
  if (first === undefined) throw new Error('no cluster node is running')
  return first
}
