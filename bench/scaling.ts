/**
 * Measures what one recording process costs Redis, for docs/scaling.md.
 * Per request: EVALSHA calls, task writes, Redis CPU, bytes into Redis and
 * bytes out to one `task_updates` subscriber. Also the size of the start and
 * end records, and what a Redis Cluster does with the PUBLISH of each write.
 *
 * The server is the Fastify example (examples/fastify.ts, Fastify 5 with
 * topPlugin) on core 0 and a private redis-server on core 1, both pinned
 * with `taskset`. This process sends browser-like requests to `GET /` at
 * fixed rates, spread evenly over each second as independent clients
 * would, then with autocannon and no rate limit.
 *
 * Usage: npx tsx bench/scaling.ts [seconds per run, default 8]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, get } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import autocannon from 'autocannon'
import Redis from 'ioredis'
import { createTrackerFromUrl, waitForReady, type RedisTracker } from '../src/index'
import { startRedisCluster } from '../test/helpers/redis-cluster'
import { findFreePort } from '../test/helpers/redis-server'
import { BROWSER_HEADERS } from './lib/headers'

const SERVER_CORE = 0
const REDIS_CORE = 1

/** Request rates of the paced runs, in requests per second; `null` is a run without a rate limit. */
const RATES: Array<number | null> = [500, 2_000, 5_000, null]

const ROOT = resolve(__dirname, '..')

/** Connections of the run without a rate limit. */
const CONNECTIONS = 50

/** Connections that the paced runs may open; more than the requests in flight at 2,000 req/s. */
const PACED_MAX_SOCKETS = 64

interface RedisCounters {
  evalshaCalls: number
  evalshaMicros: number
  /** HSET calls (one per start) plus LPUSH calls (one per end) made by the script. */
  taskWrites: number
  cpuSeconds: number
  netInputBytes: number
}

interface RunResult {
  label: string
  requests: number
  seconds: number
  evalshaCalls: number
  writes: number
  evalshaMicros: number
  cpuMicros: number
  netInputBytes: number
  subscriberBytes: number
  startRecordBytes: number
  endRecordBytes: number
  /** Bytes of the last start and end records with `request_headers` and `response_headers` set to null. */
  startRecordWithoutHeadersBytes: number
  endRecordWithoutHeadersBytes: number
}

/** Publish messages that each cluster node received over the cluster bus for a number of task writes. */
interface ClusterPublishResult {
  writes: number
  /** Bytes of each synthetic task record. */
  recordBytes: number
  receivedByNode: number[]
  /** Growth of the largest `master_repl_offset`: bytes the slot's master sent to its replica. */
  replicationBytes: number
}

/** Task writes (start and end records of the same task) sent to the test cluster. */
const CLUSTER_TASKS = 1_000

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? '8')
  const redis = await startPinnedRedis(REDIS_CORE)
  const results: RunResult[] = []
  try {
    for (const rate of RATES) results.push(await measure(redis.client, redis.url, rate, seconds))
  } finally {
    await redis.close()
  }
  printReport(results, seconds)
  printClusterReport(await measureClusterPublish())
}

async function measure(client: Redis, redisUrl: string, rate: number | null, seconds: number): Promise<RunResult> {
  const server = await startPinnedApp(redisUrl, SERVER_CORE)
  const subscriber = await subscribeToUpdates(client)
  try {
    // A short warm-up loads the script and JIT-compiles the recording path.
    await runLoad(server.url, 2, rate)
    await client.config('RESETSTAT')
    subscriber.reset()
    const before = await readCounters(client)
    const requests = await runLoad(server.url, seconds, rate)
    const after = await readCounters(client)

    return {
      label: rate === null ? `no rate limit, ${CONNECTIONS} connections` : `${rate} req/s`,
      requests,
      seconds,
      evalshaCalls: after.evalshaCalls - before.evalshaCalls,
      writes: after.taskWrites - before.taskWrites,
      evalshaMicros: after.evalshaMicros - before.evalshaMicros,
      cpuMicros: (after.cpuSeconds - before.cpuSeconds) * 1e6,
      netInputBytes: after.netInputBytes - before.netInputBytes,
      subscriberBytes: subscriber.bytes(),
      startRecordBytes: subscriber.averageBytes('start'),
      endRecordBytes: subscriber.averageBytes('end'),
      startRecordWithoutHeadersBytes: measureWithoutHeaders(subscriber.lastRecord('start')),
      endRecordWithoutHeadersBytes: measureWithoutHeaders(subscriber.lastRecord('end')),
    }
  } finally {
    await subscriber.close()
    await server.close()
  }
}

interface PinnedProcess {
  url: string
  close(): Promise<void>
}

/** Starts examples/fastify.ts on `core`, recording to `redisUrl`, and waits until it listens. */
async function startPinnedApp(redisUrl: string, core: number): Promise<PinnedProcess> {
  const port = await findFreePort()
  const child = spawnPinned(core, process.execPath, ['--import', 'tsx', 'examples/fastify.ts', '--port', String(port)], {
    TOP_TRACKER_URL: redisUrl,
  })
  await waitForOutput(child, /listening/, 30_000)
  return { url: `http://127.0.0.1:${port}/`, close: () => stopChild(child) }
}

/** Starts a private redis-server on a free loopback port, pinned to `core`, without persistence. */
async function startPinnedRedis(core: number): Promise<PinnedProcess & { client: Redis }> {
  const dir = mkdtempSync(join(tmpdir(), 'web-top-scaling-'))
  const port = await findFreePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
  const child = spawnPinned(core, 'redis-server', args, {})
  const client = new Redis({ host: '127.0.0.1', port, retryStrategy: () => 50 })
  client.on('error', () => {})
  await client.ping()

  return {
    url: `redis://127.0.0.1:${port}`,
    client,
    async close() {
      client.disconnect()
      await stopChild(child)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

function spawnPinned(core: number, command: string, args: string[], env: Record<string, string>): ChildProcess {
  return spawn('taskset', ['-c', String(core), command, ...args], {
    cwd: ROOT,
    env: { ...process.env, TOP_TRACKER_PREFIX: '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
}

function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolveOutput, reject) => {
    let output = ''
    const timer = setTimeout(() => reject(new Error(`no output matching ${pattern} within ${timeoutMs} ms`)), timeoutMs)
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      if (!pattern.test(output)) return
      clearTimeout(timer)
      resolveOutput()
    })
    child.once('exit', (code) => reject(new Error(`exited with code ${code} before ${pattern} appeared`)))
  })
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit))
  child.kill('SIGTERM')
  await exited
}

/**
 * Writes start and end records to a private 3+3 Redis Cluster under one
 * hash-tagged prefix and reads, from `CLUSTER INFO` of every node, how many
 * publish messages reached it over the cluster bus.
 */
async function measureClusterPublish(): Promise<ClusterPublishResult> {
  const cluster = await startRedisCluster()
  const tracker = createTrackerFromUrl(cluster.url, { keyPrefix: '{bench}:' }) as RedisTracker
  try {
    await waitForReady(tracker.client, 10_000)
    const before = await Promise.all(cluster.nodes.map((node) => readPublishReceived(node.client)))
    const offsetsBefore = await Promise.all(cluster.nodes.map((node) => readReplicationOffset(node.client)))
    const record = JSON.stringify({ task_id: 1, path: '/', padding: 'x'.repeat(1_300) })
    for (let i = 0; i < CLUSTER_TASKS; i++) {
      tracker.recordStart(`p${i}`, record)
      tracker.recordEnd(`p${i}`, record)
      if (i % 100 === 99) await tracker.flush()
    }
    await tracker.flush()
    // Cluster bus messages travel on their own; give them a moment to arrive.
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    const after = await Promise.all(cluster.nodes.map((node) => readPublishReceived(node.client)))
    const offsetsAfter = await Promise.all(cluster.nodes.map((node) => readReplicationOffset(node.client)))
    return {
      writes: 2 * CLUSTER_TASKS,
      recordBytes: Buffer.byteLength(record),
      receivedByNode: after.map((count, index) => count - (before[index] ?? 0)),
      replicationBytes: Math.max(...offsetsAfter.map((offset, index) => offset - (offsetsBefore[index] ?? 0))),
    }
  } finally {
    await tracker.close()
    await cluster.close()
  }
}

async function readReplicationOffset(client: Redis): Promise<number> {
  return readInfoNumber(await client.info('replication'), 'master_repl_offset')
}

async function readPublishReceived(client: Redis): Promise<number> {
  const info = (await client.cluster('INFO')) as string
  return Number(/^cluster_stats_messages_publish_received:(\d+)/m.exec(info)?.[1] ?? 0)
}

/** Sends the load and returns the number of responses. */
function runLoad(url: string, seconds: number, rate: number | null): Promise<number> {
  if (rate !== null) return sendPaced(url, rate, seconds)
  return new Promise((resolveLoad, reject) => {
    const options = { url, connections: CONNECTIONS, duration: seconds, headers: { ...BROWSER_HEADERS } }
    autocannon(options, (err, result) => (err ? reject(err) : resolveLoad(result.requests.total)))
  })
}

/**
 * Sends `rate` requests per second for `seconds`, each one when it is due
 * (checked every millisecond), as independent clients would. autocannon's
 * `overallRate` sent them in bursts on this machine (68 EVALSHA calls per
 * second at 500 req/s, 15 writes each), which overstates the batching.
 */
function sendPaced(url: string, rate: number, seconds: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: PACED_MAX_SOCKETS })
  const total = rate * seconds
  const startedAt = performance.now()
  let sent = 0
  let open = 0

  return new Promise((resolveLoad, reject) => {
    const onDone = () => {
      open--
      if (sent < total || open > 0) return
      agent.destroy()
      resolveLoad(total)
    }
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - startedAt) / 1000) * rate))
      for (; sent < due; sent++) {
        open++
        get(url, { agent, headers: BROWSER_HEADERS }, (res) => res.resume().on('end', onDone)).on('error', reject)
      }
      if (sent < total) setTimeout(tick, 1)
    }
    tick()
  })
}

function measureWithoutHeaders(json: string): number {
  return Buffer.byteLength(JSON.stringify({ ...JSON.parse(json), request_headers: null, response_headers: null }))
}

async function readCounters(client: Redis): Promise<RedisCounters> {
  const info = await client.info('all')
  const evalsha = /^cmdstat_evalsha:calls=(\d+),usec=(\d+)/m.exec(info)
  const calls = (command: string) => Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0)
  return {
    evalshaCalls: Number(evalsha?.[1] ?? 0),
    evalshaMicros: Number(evalsha?.[2] ?? 0),
    taskWrites: calls('hset') + calls('lpush'),
    cpuSeconds: readInfoNumber(info, 'used_cpu_user') + readInfoNumber(info, 'used_cpu_sys'),
    netInputBytes: readInfoNumber(info, 'total_net_input_bytes'),
  }
}

function readInfoNumber(info: string, name: string): number {
  const match = new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)
  if (match === null) throw new Error(`INFO has no field ${name}`)
  return Number(match[1])
}

/** Subscribes to `task_updates`, as a live `web-top-cli` does, and counts what it receives. */
async function subscribeToUpdates(client: Redis) {
  const subscriber = client.duplicate()
  const sizes = { start: [] as number[], end: [] as number[] }
  let bytes = 0
  const lastRecords = { start: '{}', end: '{}' }
  subscriber.on('message', (_channel: string, message: string) => {
    const length = Buffer.byteLength(message)
    bytes += length
    // An end record has `ended_at` set; a start record has it null or missing.
    const kind = /"ended_at":"/.test(message) ? 'end' : 'start'
    lastRecords[kind] = message
    if (sizes[kind].length < 10_000) sizes[kind].push(length)
  })
  await subscriber.subscribe('task_updates')

  return {
    bytes: () => bytes,
    averageBytes: (kind: 'start' | 'end') => average(sizes[kind]),
    lastRecord: (kind: 'start' | 'end') => lastRecords[kind],
    reset() {
      bytes = 0
      sizes.start = []
      sizes.end = []
    },
    close: async () => {
      await subscriber.quit()
    },
  }
}

function average(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length
}

function printReport(results: RunResult[], seconds: number): void {
  const setup = `examples/fastify.ts on core ${SERVER_CORE}, redis-server on core ${REDIS_CORE}`
  console.log(`${setup}, ${seconds} s per run.`)
  console.log('')
  console.log(
    '| load | req/s | EVALSHA/s | writes per EVALSHA | EVALSHA per request | Redis EVALSHA µs/call | ' +
      'Redis EVALSHA µs/req | Redis CPU µs/req | bytes in/req | subscriber bytes/req | start record | end record |',
  )
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const result of results) {
    const perRequest = (value: number) => (value / result.requests).toFixed(2)
    const row = [
      result.label,
      (result.requests / result.seconds).toFixed(0),
      (result.evalshaCalls / result.seconds).toFixed(0),
      (result.writes / result.evalshaCalls).toFixed(2),
      perRequest(result.evalshaCalls),
      (result.evalshaMicros / result.evalshaCalls).toFixed(1),
      perRequest(result.evalshaMicros),
      perRequest(result.cpuMicros),
      perRequest(result.netInputBytes),
      perRequest(result.subscriberBytes),
      result.startRecordBytes.toFixed(0),
      result.endRecordBytes.toFixed(0),
    ]
    console.log(`| ${row.join(' | ')} |`)
  }
  const last = results.at(-1)
  if (last === undefined) return
  const withoutHeaders = `start ${last.startRecordWithoutHeadersBytes} bytes, end ${last.endRecordWithoutHeadersBytes} bytes`
  console.log(`\nRecords without request and response headers: ${withoutHeaders}.`)
}

function printClusterReport(result: ClusterPublishResult): void {
  console.log('')
  console.log(`Redis Cluster, 3 masters + 3 replicas: ${result.writes} task writes, each with one PUBLISH.`)
  console.log(`Publish messages received over the cluster bus, per node: ${result.receivedByNode.join(', ')}`)
  const perWrite = (result.replicationBytes / result.writes).toFixed(0)
  console.log(`Replication stream of the slot's master: ${perWrite} bytes per write of a ${result.recordBytes}-byte record.`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
