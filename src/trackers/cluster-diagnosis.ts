/**
 * Finds why a read of a Redis Cluster failed, so that the message names
 * the node or the slot at fault instead of the client's error, such as
 * "Connection is closed." or a redirection to a node that is down. It sends
 * `CLUSTER NODES` and `CLUSTER INFO` to the seed nodes of the URL, and
 * runs only after a failure.
 */
import { Redis, type RedisOptions } from 'ioredis'
import { describeMismatchError } from './protocol-mismatch'
import { createRedisKeys } from './redis-keys'

/** Time each seed node gets to connect and to reply to each command. */
const PROBE_TIMEOUT_MS = 1_000

/** One line of `CLUSTER NODES`. */
interface ClusterNode {
  id: string
  /** `host:port` of the node's clients. */
  address: string
  flags: string[]
  /** Id of the master of a replica, `-` for a master. */
  masterId: string
  linkState: string
  /** Slot ranges the node serves, inclusive. */
  slots: Array<[number, number]>
}

/** The cluster as one seed node reported it. */
interface ClusterView {
  /** Port of the seed that replied, for the `redis-cli` command in the hint. */
  port: number
  state: string | undefined
  nodes: ClusterNode[]
  /** Slot of the prefix's keys, when a prefix was given. */
  slot: number | undefined
}

export interface ClusterSeeds {
  nodes: ReadonlyArray<{ host: string; port: number }>
  /** Options of each node's client: the password, user and TLS of the URL. */
  nodeOptions: RedisOptions
}

/**
 * Returns what is wrong with the cluster for the keys of `keyPrefix` (or
 * for any slot, without one), followed by the `redis-cli` commands to check
 * it. `prefixSetting` names where the prefix was set, such as `--prefix`.
 * When no seed node replies, returns the first seed's protocol mismatch
 * (`describeMismatchError`), such as an HTTP reply or an untrusted
 * certificate. Returns undefined otherwise, and for a healthy cluster.
 */
export async function diagnoseCluster(
  seeds: ClusterSeeds,
  keyPrefix: string | undefined,
  prefixSetting = '--prefix',
): Promise<string | undefined> {
  const results = await Promise.all(seeds.nodes.map((node) => readNodeView(node, seeds.nodeOptions, keyPrefix)))
  const view = results.find((result) => result.view !== undefined)?.view
  if (view === undefined) return describeSeedMismatch(seeds, results)
  const problem =
    view.slot === undefined
      ? findDownMasters(view)
      : findSlotProblem(view, view.slot, `${prefixSetting} ${JSON.stringify(keyPrefix ?? '')}`)
  if (problem === undefined) return undefined
  const down = view.state === 'fail' ? '; the cluster reports cluster_state:fail (CLUSTERDOWN)' : ''
  return (
    `${problem}${down}. Check the cluster with redis-cli -c -p ${view.port} cluster info ` +
    `and redis-cli -c -p ${view.port} cluster nodes`
  )
}

/** Describes why the slot of the prefix, set as `prefixSetting`, has no working master, or returns undefined. */
function findSlotProblem(view: ClusterView, slot: number, prefixSetting: string): string | undefined {
  const ofPrefix = `slot ${slot} (the keys of ${prefixSetting})`
  const master = view.nodes.find((node) => node.flags.includes('master') && servesSlot(node, slot))
  if (master === undefined) {
    return `no cluster node serves ${ofPrefix}: its master and replicas are down or the slot is unassigned`
  }
  if (isReachable(master)) return undefined

  const replicas = view.nodes.filter((node) => node.masterId === master.id)
  return `the cluster node ${master.address} that serves ${ofPrefix} is not reachable, and ${describeReplicas(replicas)}`
}

/** Describes the replicas of a master that is not reachable. */
function describeReplicas(replicas: readonly ClusterNode[]): string {
  if (replicas.length === 0) return 'it has no replica'
  if (replicas.some(isReachable)) return 'a replica may take over after cluster-node-timeout'
  const addresses = replicas.map((node) => node.address).join(', ')
  return replicas.length === 1
    ? `its replica ${addresses} is not reachable either`
    : `its replicas ${addresses} are not reachable either`
}

/** Describes the masters that are not reachable, or returns undefined. */
function findDownMasters(view: ClusterView): string | undefined {
  const down = view.nodes.filter(
    (node) => node.flags.includes('master') && node.slots.length > 0 && !isReachable(node),
  )
  if (down.length === 0) return undefined
  const addresses = down.map((node) => node.address).join(', ')
  return down.length === 1
    ? `the cluster node ${addresses}, a master, is not reachable`
    : `the cluster nodes ${addresses}, masters, are not reachable`
}

/** Checks that no node has flagged the node as failing and that the bus link to it is up. */
function isReachable(node: ClusterNode): boolean {
  const failing = node.flags.some((flag) => flag === 'fail' || flag === 'fail?')
  return !failing && (node.flags.includes('myself') || node.linkState === 'connected')
}

function servesSlot(node: ClusterNode, slot: number): boolean {
  return node.slots.some(([first, last]) => slot >= first && slot <= last)
}

/** The view of one seed node, or the first error of its client when it gave none. */
interface SeedResult {
  view?: ClusterView
  error?: unknown
}

/** Returns the first seed's mismatch (`describeMismatchError`) in URL order, naming the seed, or undefined. */
function describeSeedMismatch(seeds: ClusterSeeds, results: readonly SeedResult[]): string | undefined {
  for (const [index, result] of results.entries()) {
    const mismatch = describeMismatchError(result.error)
    const node = seeds.nodes[index]
    if (mismatch !== undefined && node !== undefined) {
      return `the seed node ${node.host}:${node.port} failed: ${mismatch.reason}. ${mismatch.hint}`
    }
  }
  return undefined
}

/** Queries one seed node. */
async function readNodeView(
  node: { host: string; port: number },
  nodeOptions: RedisOptions,
  keyPrefix: string | undefined,
): Promise<SeedResult> {
  const client = new Redis({
    ...nodeOptions,
    host: node.host,
    port: node.port,
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  let firstError: unknown
  client.on('error', (error: unknown) => {
    firstError ??= error
  })
  try {
    await client.connect()
    const nodesText = String(await client.cluster('NODES'))
    const infoText = String(await client.cluster('INFO'))
    const slot =
      keyPrefix === undefined
        ? undefined
        : Number(await client.cluster('KEYSLOT', createRedisKeys(keyPrefix).processors))
    const state = /^cluster_state:(\w+)/m.exec(infoText)?.[1]
    return { view: { port: node.port, state, nodes: parseClusterNodes(nodesText), slot } }
  } catch (error) {
    return { error: firstError ?? error }
  } finally {
    client.disconnect()
  }
}

/** Parses the reply of `CLUSTER NODES`, leaving out slots being imported or migrated (`[…]`). */
export function parseClusterNodes(text: string): ClusterNode[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter((fields) => fields.length >= 8)
    .map((fields) => ({
      id: fields[0] ?? '',
      address: (fields[1] ?? '').split(/[@,]/)[0] ?? '',
      flags: (fields[2] ?? '').split(','),
      masterId: fields[3] ?? '-',
      linkState: fields[7] ?? '',
      slots: fields
        .slice(8)
        .filter((range) => !range.startsWith('['))
        .map((range) => {
          const [first = '', last = first] = range.split('-')
          return [Number(first), Number(last)] as [number, number]
        }),
    }))
}
