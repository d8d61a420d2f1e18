/**
 * One measured run of one server, and the checks that the Redis tracker
 * wrote everything it was handed: the drain check and the record sizes.
 */
import { request as httpRequest } from 'node:http'
import type { LoadRequest, LoadResult } from '../load'
import { LoadChild, type ServerChild } from './children'
import { BROWSER_HEADERS } from './headers'
import { readRedisCpuSeconds, type BenchRedis, type PublishedRecordCounter } from './redis'

export const SERVER_CORE = 0
export const LOAD_CORE = 1
export const CONNECTIONS = 50

/** Completed tasks the Redis tracker keeps in `past_tasks` by default. */
export const PAST_TASKS_CAP = 256

/** Maximum wait after a run for the end events, in milliseconds. Past it the drain check fails. */
const DRAIN_TIMEOUT_MS = 5_000

/** One run of one variant in one round. */
export interface RunSample {
  round: number
  load: LoadResult
  /** Requests the server's route handler ran during the run. */
  handled: number
  serverCpuMicrosPerRequest: number
  redisCpuMicrosPerRequest: number
  /** CPU time of the load generator's process per request. */
  loadCpuMicrosPerRequest: number
  /**
   * CPU time of the benchmark's own process per request, mostly that of the
   * drain check's subscriber, which receives every published record.
   */
  orchestratorCpuMicrosPerRequest: number
  /**
   * Share (0–1) of the two cores' time during the run that neither the
   * benchmark's processes nor Redis used: other programs, and kernel work
   * not charged to a process.
   */
  foreignShare: number
  /** Runs made to get this one: more than 1 when earlier ones were disturbed by other programs. */
  attempts: number
  drain: DrainCheck | null
}

/** State of the Redis keys and of the update channel after a Redis-tracker run. */
export interface DrainCheck {
  /** Entries left in the `processors` hash. */
  activeEntries: number
  /** Length of the `past_tasks` list. */
  pastTasks: number
  /** Records with a non-null `ended_at` published on `task_updates` since the server started. */
  endEvents: number
  /** Requests the server handled since it started. */
  handled: number
  /** Writes the tracker counted as dropped since the server started. */
  dropped: number
  ok: boolean
}

/**
 * Loads a server for `seconds` and measures it: with every connection busy,
 * or at `rate` requests per second when given. With a counter it also
 * checks the drain.
 */
export async function measureRun(
  server: ServerChild,
  redis: BenchRedis,
  round: number,
  seconds: number,
  counter: PublishedRecordCounter | null,
  rate?: number,
): Promise<RunSample> {
  const loadChild = await LoadChild.start(LOAD_CORE)
  const statsBefore = await server.stats()
  const redisCpuBefore = await readRedisCpuSeconds(redis.client)
  const ownCpuBefore = process.cpuUsage()

  const load = await loadChild.run(loadRequest(server, seconds, rate))
  const drain = counter === null ? null : await waitForDrain(server, redis, counter)
  if (counter === null) await sleep(200)

  const statsAfter = await server.stats()
  const redisCpuSeconds = (await readRedisCpuSeconds(redis.client)) - redisCpuBefore
  const ownCpu = process.cpuUsage(ownCpuBefore)
  const serverCpuSeconds = (statsAfter.cpuMicros - statsBefore.cpuMicros) / 1e6
  const handled = statsAfter.handled - statsBefore.handled

  const ownCpuSeconds = (ownCpu.user + ownCpu.system) / 1e6
  const benchCpuSeconds = serverCpuSeconds + redisCpuSeconds + load.cpuSeconds + ownCpuSeconds
  const busyCpuSeconds = (load.serverCoreBusy + load.loadCoreBusy) * load.wallSeconds
  return {
    round,
    load,
    handled,
    serverCpuMicrosPerRequest: (serverCpuSeconds * 1e6) / handled,
    redisCpuMicrosPerRequest: (redisCpuSeconds * 1e6) / handled,
    loadCpuMicrosPerRequest: (load.cpuSeconds * 1e6) / handled,
    orchestratorCpuMicrosPerRequest: (ownCpuSeconds * 1e6) / handled,
    foreignShare: Math.max(0, (busyCpuSeconds - benchCpuSeconds) / (2 * load.wallSeconds)),
    attempts: 1,
    drain,
  }
}

/** Runs one load test against a server, for a warm-up or a measurement. */
export async function loadServer(server: ServerChild, seconds: number): Promise<LoadResult> {
  const loadChild = await LoadChild.start(LOAD_CORE)
  return loadChild.run(loadRequest(server, seconds))
}

function loadRequest(server: ServerChild, seconds: number, rate?: number): LoadRequest {
  return {
    url: server.url,
    connections: CONNECTIONS,
    durationSeconds: seconds,
    headers: { ...BROWSER_HEADERS },
    serverCore: SERVER_CORE,
    loadCore: LOAD_CORE,
    ...(rate === undefined ? {} : { rate }),
  }
}

/**
 * Waits until every request the server handled has its end event on the
 * channel, then reads the keys. Gives up after a timeout and reports what
 * it found, so that a lost write shows as a failed check.
 */
async function waitForDrain(
  server: ServerChild,
  redis: BenchRedis,
  counter: PublishedRecordCounter,
): Promise<DrainCheck> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS
  let stats = await server.stats()
  while (counter.ended < stats.handled && Date.now() < deadline) {
    await sleep(50)
    stats = await server.stats()
  }

  const activeEntries = await redis.client.hlen('processors')
  const pastTasks = await redis.client.llen('past_tasks')
  const dropped = stats.tracker?.dropped ?? 0
  const allEnded = counter.ended === stats.handled
  return {
    activeEntries,
    pastTasks,
    endEvents: counter.ended,
    handled: stats.handled,
    dropped,
    ok: activeEntries === 0 && pastTasks === PAST_TASKS_CAP && allEnded && dropped === 0,
  }
}

/** Bytes of one request's records as Redis stores them, and the end record's text. */
export interface RecordSizes {
  startBytes: number
  endBytes: number
  endRecord: string
}

/**
 * Sends one request with the benchmark's headers whose response the
 * server delays, reads its active record with HGET meanwhile and its
 * completed record with LINDEX once the response has arrived.
 */
export async function probeRecordSizes(
  server: ServerChild,
  redis: BenchRedis,
): Promise<RecordSizes> {
  await server.holdNext()
  const answered = getOnce(server.url)
  await sleep(100)

  const fields = await redis.client.hkeys('processors')
  if (fields.length !== 1) {
    throw new Error(`record size probe failed: expected 1 active task, found ${fields.length}`)
  }
  const start = await redis.client.hgetBuffer('processors', fields[0] as string)

  await answered
  await sleep(100)
  const end = await redis.client.lindexBuffer('past_tasks', 0)
  if (start === null || end === null) {
    throw new Error('record size probe failed: no record in processors or past_tasks')
  }
  return { startBytes: start.length, endBytes: end.length, endRecord: end.toString('utf8') }
}

function getOnce(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: BROWSER_HEADERS, agent: false }, (res) => {
      res.resume()
      res.once('end', resolve)
    })
    req.once('error', reject)
    req.end()
  })
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
