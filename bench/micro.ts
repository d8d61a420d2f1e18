/**
 * Times web-top's per-request steps in one process, without HTTP: the
 * timestamp, the request and response parts as JSON, the whole recorder
 * with a tracker that drops everything, with the memory tracker and with
 * the Redis tracker. Below some steps it times what they replaced
 * (`JSON.stringify` of objects, `toISOString()` per call), to show what
 * the change saves.
 *
 * Usage: npx tsx bench/micro.ts
 *
 * Runs pinned to core 0, with its own redis-server on core 1. Each number
 * is the median CPU time over 7 batches.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type Redis from 'ioredis'
import { MemoryTracker, Recorder, RedisTracker, topMiddleware } from '../src/index'
import { CaptureEncoder, captureRequest, captureResponse, type CaptureSettings } from '../src/task/capture'
import { createRedactionRules, DEFAULT_SIZE_LIMITS } from '../src/task/redact'
import { formatIsoTime, nowMs } from '../src/task/time'
import { encodeFields } from '../src/task/wire'
import { pinSelf } from './lib/machine'
import { LOAD_CORE, SERVER_CORE } from './lib/measure'
import { readRedisCpuSeconds, startRedis } from './lib/redis'
import { median } from './lib/stats'
import { DroppingTracker, makeRequest, makeResponse } from './micro/fixtures'

const BATCHES = 7
/** Requests per script call in the largest Redis tracker run, like the load's 50 connections. */
const CONCURRENCY = 50

const settings: CaptureSettings = {
  captureHeaders: true,
  rules: createRedactionRules(),
  limits: { ...DEFAULT_SIZE_LIMITS },
}

interface Timing {
  name: string
  nanosPerOperation: number
}

/** The last value kept, so that V8 cannot drop a timed call whose result is unused. */
let lastKeptValue: unknown

/**
 * Runs `operation` `count` times per batch and returns the median CPU time
 * per operation, in nanoseconds. CPU time rather than wall time, so that
 * other programs taking the core do not count.
 */
function timeSync(name: string, count: number, operation: (index: number) => unknown): Timing {
  for (let i = 0; i < count; i++) lastKeptValue = operation(i) // warm-up: let V8 optimise

  const perOperation: number[] = []
  for (let batch = 0; batch < BATCHES; batch++) {
    const before = process.cpuUsage()
    for (let i = 0; i < count; i++) lastKeptValue = operation(i)
    const cpu = process.cpuUsage(before)
    perOperation.push(((cpu.user + cpu.system) * 1000) / count)
  }
  return { name, nanosPerOperation: median(perOperation) }
}

function timeSteps(): Timing[] {
  const req = makeRequest()
  const res = makeResponse(req)
  const encoder = new CaptureEncoder(settings)
  const withoutHeaders = new CaptureEncoder({ ...settings, captureHeaders: false })
  const requestPart = captureRequest(req, settings)
  const responsePart = captureResponse(res, settings)
  const noop = () => {}

  return [
    timeSync('nowMs()', 200_000, () => nowMs()),
    timeSync('formatIsoTime(nowMs())', 200_000, () => formatIsoTime(nowMs())),
    timeSync('  before: toISOString() per call', 200_000, () => formatIsoTimePerCall(nowMs())),
    timeSync('encodeRequest (13 headers), flattened', 100_000, () =>
      flatten(encoder.encodeRequest(req)),
    ),
    timeSync('encodeRequest, captureHeaders: false', 100_000, () =>
      flatten(withoutHeaders.encodeRequest(req)),
    ),
    timeSync('  before: encodeFields(request part object)', 100_000, () =>
      flatten(encodeFields(requestPart)),
    ),
    timeSync('encodeResponse (Express headers), flattened', 100_000, () =>
      flatten(encoder.encodeResponse(res)),
    ),
    timeSync('  before: encodeFields(response part object)', 100_000, () =>
      flatten(encodeFields(responsePart)),
    ),
    timeSync("res.on('close'), then off", 100_000, () => {
      res.on('close', noop)
      res.off('close', noop)
    }),
    timeSync('new IncomingMessage + ServerResponse + writeHead', 50_000, () =>
      makeResponse(makeRequest()),
    ),
  ]
}

/** The former formatIsoTime, which called `toISOString()` every time. */
function formatIsoTimePerCall(epochMs: number): string {
  const wholeMs = Math.floor(epochMs)
  const micros = Math.min(999, Math.round((epochMs - wholeMs) * 1000))
  return `${new Date(wholeMs).toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}+00:00`
}

/** Returns the UTF-8 length, which flattens the string as every tracker write does. */
function flatten(text: string): number {
  return Buffer.byteLength(text)
}

/** Ends a response as Node's HTTP server does: `finish`, then `close` with `writableFinished` true. */
function finishResponse(res: ServerResponse): void {
  res.finished = true
  res.emit('finish')
  res.emit('close')
}

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void

/** Times `handle` and the end of the response on fresh objects, minus creating those objects. */
function timeRecorder(name: string, handle: RequestHandler): Timing {
  const fixture = timeSync('fixture', 20_000, () => {
    const req = makeRequest()
    const res = makeResponse(req)
    finishResponse(res)
  })
  const recorded = timeSync(name, 20_000, () => {
    const req = makeRequest()
    const res = makeResponse(req)
    handle(req, res)
    finishResponse(res)
  })
  return { name, nanosPerOperation: recorded.nanosPerOperation - fixture.nanosPerOperation }
}

/** `/?%&%&…`, 15 KB: 7,500 pairs, each a `%` that `decodeURIComponent` rejects. */
const HOSTILE_QUERY_URL = `/?${'%&'.repeat(7_500)}`

function timeLocalRecorders(): Timing[] {
  const dropping = new DroppingTracker()
  const droppingRecorder = new Recorder({ tracker: dropping })
  const middleware = topMiddleware({ tracker: dropping })
  const memoryRecorder = new Recorder({ tracker: new MemoryTracker() })

  const timings = [
    timeRecorder('Recorder.track + end, dropping tracker', (req, res) =>
      droppingRecorder.track(req, res, { taskName: '/' }),
    ),
    timeRecorder('Express middleware + end, dropping tracker', (req, res) =>
      middleware(req, res, () => {}),
    ),
    timeRecorder('Recorder.track + end, memory tracker', (req, res) =>
      memoryRecorder.track(req, res, { taskName: '/' }),
    ),
    // A client chooses the query: before the capture stopped at maxUrlLength and maxParams, this one took 29 ms.
    timeRecorder('Recorder.track + end, dropping tracker, 15 KB query of malformed escapes', (req, res) => {
      req.url = HOSTILE_QUERY_URL
      droppingRecorder.track(req, res, { taskName: '/' })
    }),
  ]
  lastKeptValue = dropping.characters
  return timings
}

/**
 * Times requests through a recorder whose tracker sends to Redis, in
 * rounds of `perCall` requests. The tracker's batch window is 0, so each
 * round goes to Redis as one script call in the following turn of the
 * event loop. Returns the CPU time of this process (fixture cost
 * subtracted) and of Redis per request; comparing round sizes shows the
 * cost of a script call.
 */
async function timeRedisRecorder(redisUrl: string, redisClient: Redis, perCall: number): Promise<Timing[]> {
  const tracker = new RedisTracker({ url: redisUrl, batchWindowMs: 0 })
  const recorder = new Recorder({ tracker })
  await tracker.flush()
  const rounds = Math.ceil(20_000 / perCall)

  const run = async (record: boolean) => {
    const cpuBefore = process.cpuUsage()
    const redisBefore = await readRedisCpuSeconds(redisClient)
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < perCall; i++) {
        const req = makeRequest()
        const res = makeResponse(req)
        if (record) recorder.track(req, res, { taskName: '/' })
        finishResponse(res)
      }
      await new Promise((resolve) => setImmediate(resolve))
      // Wait for Redis now and then, as an HTTP server's pace would, so that the
      // tracker's byte budget does not overflow. A dropped record fails the run below.
      if (round % 20 === 19) await tracker.flush()
    }
    await tracker.flush()

    const cpu = process.cpuUsage(cpuBefore)
    const redisSeconds = (await readRedisCpuSeconds(redisClient)) - redisBefore
    const requests = rounds * perCall
    return {
      processNanos: ((cpu.user + cpu.system) * 1000) / requests,
      redisNanos: (redisSeconds * 1e9) / requests,
    }
  }

  await run(true) // warm-up
  const fixture: number[] = []
  const recorded: number[] = []
  const redis: number[] = []
  for (let batch = 0; batch < BATCHES; batch++) {
    fixture.push((await run(false)).processNanos)
    const result = await run(true)
    recorded.push(result.processNanos)
    redis.push(result.redisNanos)
  }

  const { dropped } = tracker.stats()
  await recorder.close()
  await tracker.close()
  if (dropped > 0) {
    throw new Error(`Redis tracker timing invalid: ${dropped} records were dropped, not sent`)
  }
  return [
    {
      name: `Recorder.track + end, Redis tracker, ${perCall} per script call (this process)`,
      nanosPerOperation: median(recorded) - median(fixture),
    },
    {
      name: `Recorder.track + end, Redis tracker, ${perCall} per script call (redis-server CPU)`,
      nanosPerOperation: median(redis),
    },
  ]
}

async function main(): Promise<void> {
  pinSelf(SERVER_CORE)
  const redis = await startRedis(LOAD_CORE)
  try {
    const timings = [
      ...timeSteps(),
      ...timeLocalRecorders(),
      ...(await timeRedisRecorder(redis.url, redis.client, 1)),
      ...(await timeRedisRecorder(redis.url, redis.client, 7)),
      ...(await timeRedisRecorder(redis.url, redis.client, CONCURRENCY)),
    ]
    console.log('| step | µs per call or request |')
    console.log('| --- | ---: |')
    for (const timing of timings) {
      console.log(`| ${timing.name} | ${(timing.nanosPerOperation / 1000).toFixed(2)} |`)
    }
  } finally {
    await redis.close()
  }
  void lastKeptValue
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
