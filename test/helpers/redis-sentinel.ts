/**
 * Starts a private Redis Sentinel setup on free loopback ports: a master,
 * one replica and one or more Sentinels that monitor the master as
 * `mymaster` with a quorum of 1. A test can fail the master over to the
 * replica, and freeze or kill a Sentinel.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { findFreePort, waitUntil } from './redis-server'

/** Name under which the Sentinel monitors the master. */
export const MASTER_NAME = 'mymaster'

/**
 * Maximum wait for the setup to form and for a failover to end. The CI
 * machine has two cores shared with other test files, and a wait of 5 s for
 * a replica's first sync has run out there.
 */
export const SENTINEL_WAIT_MS = 60_000

/** A process of the setup: a data node or a Sentinel. */
export interface SetupNode {
  port: number
  child: ChildProcess
  /** A connection for the test's own checks. It reconnects, because Sentinel kills the clients of a demoted master. */
  client: Redis
}

export interface TestSentinel {
  /** `redis+sentinel://127.0.0.1:<port>,127.0.0.1:<port>/mymaster`, with every Sentinel in start order. */
  url: string
  sentinels: SetupNode[]
  /** The two data nodes, master first as started. */
  nodes: [SetupNode, SetupNode]
  /** Returns the port of the master that a Sentinel, the first by default, names now (`SENTINEL get-master-addr-by-name`). */
  masterPort(sentinelIndex?: number): Promise<number>
  /** Returns the data node on `port`. */
  node(port: number): SetupNode
  /**
   * Sends `SENTINEL FAILOVER` to a Sentinel, the first by default, again
   * while it has no replica it can promote yet, and resolves once every
   * Sentinel that is neither frozen nor killed names the other node and that
   * node reports `role:master`. Returns the new master's port.
   */
  failover(sentinelIndex?: number): Promise<number>
  /** Freezes a Sentinel process (SIGSTOP): the kernel still accepts connections, and the Sentinel replies to nothing. */
  freezeSentinel(index: number): void
  /** Resumes a frozen Sentinel (SIGCONT). */
  thawSentinel(index: number): void
  /**
   * Kills a Sentinel process (SIGKILL) and resolves once it has exited. The
   * kernel resets the connections of a frozen Sentinel that it killed.
   */
  killSentinel(index: number): Promise<void>
  /** Stops every process of the setup and removes their folder. */
  close(): Promise<void>
}

/**
 * Starts the master, then the replica, waits for the replica's first sync,
 * then starts `sentinelCount` Sentinels, so that their first `INFO` of the
 * master already lists the replica.
 */
export async function startRedisSentinel(sentinelCount = 1): Promise<TestSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'web-top-sentinel-'))
  const started: SetupNode[] = []
  const killAll = () => {
    for (const node of started) {
      if (!hasExited(node.child)) node.child.kill('SIGKILL')
    }
  }
  process.once('exit', killAll)

  const close = async () => {
    process.off('exit', killAll)
    for (const node of started) node.client.disconnect()
    await Promise.all(started.map((node) => stopProcess(node.child)))
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    const master = await startDataNode(dir, [])
    started.push(master)
    const replica = await startDataNode(dir, ['--replicaof', '127.0.0.1', String(master.port)])
    started.push(replica)
    await waitUntil('the replica to sync with the master', SENTINEL_WAIT_MS, async () =>
      /master_link_status:up/.test(await replica.client.info('replication')),
    )

    const sentinels: SetupNode[] = []
    for (let i = 0; i < sentinelCount; i++) {
      const sentinel = await startSentinel(dir, master.port)
      started.push(sentinel)
      sentinels.push(sentinel)
    }
    const setup = createSetup(sentinels, [master, replica], close)
    await waitForMaster(sentinels, master)
    return setup
  } catch (error) {
    await close()
    throw error
  }
}

function createSetup(sentinels: SetupNode[], nodes: [SetupNode, SetupNode], close: () => Promise<void>): TestSentinel {
  const stopped = new Set<SetupNode>()
  const running = () => sentinels.filter((sentinel) => !stopped.has(sentinel))
  const masterPort = (sentinelIndex = 0) => readMasterPort(sentinelAt(sentinels, sentinelIndex))
  const node = (port: number) => {
    const found = nodes.find((candidate) => candidate.port === port)
    if (found === undefined) throw new Error(`no data node on port ${port}`)
    return found
  }

  return {
    url: `redis+sentinel://${sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(',')}/${MASTER_NAME}`,
    sentinels,
    nodes,
    masterPort,
    node,
    async failover(sentinelIndex = 0) {
      const oldPort = await masterPort(sentinelIndex)
      const newMaster = nodes.find((candidate) => candidate.port !== oldPort) as SetupNode
      // The Sentinel replies NOGOODSLAVE until it has heard from the replica.
      await waitUntil('the Sentinel to accept SENTINEL FAILOVER', SENTINEL_WAIT_MS, async () => {
        await sentinelAt(sentinels, sentinelIndex).client.call('SENTINEL', 'FAILOVER', MASTER_NAME)
        return true
      })
      await waitForMaster(running(), newMaster)
      return newMaster.port
    },
    freezeSentinel(index) {
      const sentinel = sentinelAt(sentinels, index)
      stopped.add(sentinel)
      sentinel.child.kill('SIGSTOP')
    },
    thawSentinel(index) {
      const sentinel = sentinelAt(sentinels, index)
      if (hasExited(sentinel.child)) return
      stopped.delete(sentinel)
      sentinel.child.kill('SIGCONT')
    },
    async killSentinel(index) {
      const sentinel = sentinelAt(sentinels, index)
      stopped.add(sentinel)
      sentinel.client.disconnect()
      // A frozen Sentinel stays frozen until it dies, so it reads none of the data that waits on its connections.
      await stopProcess(sentinel.child, { resume: false })
    },
    close,
  }
}

async function readMasterPort(sentinel: SetupNode): Promise<number> {
  const reply = (await sentinel.client.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as [string, string] | null
  if (reply === null) throw new Error(`the Sentinel on port ${sentinel.port} does not know the master ${MASTER_NAME}`)
  return Number(reply[1])
}

/** Resolves once every Sentinel names `master` and `master` reports `role:master`. */
async function waitForMaster(sentinels: SetupNode[], master: SetupNode): Promise<void> {
  await waitUntil(`every Sentinel to name port ${master.port} as master`, SENTINEL_WAIT_MS, async () => {
    const ports = await Promise.all(sentinels.map(readMasterPort))
    if (!ports.every((port) => port === master.port)) return false
    return /role:master/.test(await master.client.info('replication'))
  })
}

function sentinelAt(sentinels: SetupNode[], index: number): SetupNode {
  const sentinel = sentinels[index]
  if (sentinel === undefined) throw new Error(`no Sentinel at index ${index}`)
  return sentinel
}

async function startDataNode(dir: string, extraArgs: string[]): Promise<SetupNode> {
  const port = await findFreePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
  // Without a delay of 0, the master waits 5 s for more replicas before the first sync.
  args.push('--dbfilename', `dump-${port}.rdb`, '--repl-diskless-sync-delay', '0', ...extraArgs)
  return startProcess(port, args)
}

/**
 * Starts a Sentinel with a config file in `dir`, which the Sentinel
 * rewrites to keep its state. It marks the master down after 1 s without a
 * reply, and names host addresses as IPs.
 */
async function startSentinel(dir: string, masterPort: number): Promise<SetupNode> {
  const port = await findFreePort()
  const configPath = join(dir, `sentinel-${port}.conf`)
  const config = [
    'bind 127.0.0.1',
    `port ${port}`,
    `dir ${dir}`,
    'sentinel resolve-hostnames no',
    `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 1`,
    `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
    `sentinel failover-timeout ${MASTER_NAME} 10000`,
  ]
  writeFileSync(configPath, `${config.join('\n')}\n`)
  return startProcess(port, [configPath, '--sentinel'])
}

async function startProcess(port: number, args: string[]): Promise<SetupNode> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'] })
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100 })
  client.on('error', () => {})
  const node = { port, child, client }
  const exited = new Promise<never>((_resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`redis-server ${args.join(' ')} exited (${signal ?? code})`)))
  })
  exited.catch(() => undefined)
  try {
    const ready = waitUntil(`redis-server on port ${port}`, SENTINEL_WAIT_MS, async () => (await client.ping()) === 'PONG')
    await Promise.race([ready, exited])
  } catch (error) {
    client.disconnect()
    await stopProcess(child)
    throw error
  }
  return node
}

/** Kills a process with SIGKILL, after a SIGCONT unless `resume` is false, and resolves once it has exited. */
async function stopProcess(child: ChildProcess, { resume = true } = {}): Promise<void> {
  if (hasExited(child)) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  if (resume) child.kill('SIGCONT')
  child.kill('SIGKILL')
  await exited
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}
