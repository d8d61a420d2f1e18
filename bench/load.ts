/**
 * The load generator, started by bench/run.ts as a child process so that it
 * can be pinned to its own core. Once loaded it sends `{ ready: true }`,
 * then receives one `LoadRequest` over IPC, runs autocannon (or, with a
 * `rate`, the paced load of lib/paced-load.ts) and sends back a
 * `LoadResult`. Start-up happens before the request, so it is never part
 * of a measurement.
 *
 * autocannon's own latency histogram has a resolution of 1 ms, too coarse
 * for a hello-world route served in 1–5 ms, so latencies are recorded
 * here from its `response` events, with microsecond resolution.
 */
import autocannon from 'autocannon'
import { coreShare, readCoreTimes, type CoreTimes } from './lib/machine'
import { runPacedLoad } from './lib/paced-load'
import { percentile } from './lib/stats'

export interface LoadRequest {
  url: string
  connections: number
  durationSeconds: number
  headers: Record<string, string>
  /**
   * Requests per second for a paced run, which sends each request when it
   * is due. Left out, autocannon keeps every connection busy.
   */
  rate?: number
  /** Cores whose use is measured over the run: the server's and the load generator's. */
  serverCore: number
  loadCore: number
}

export interface LoadResult {
  /** Responses received during the run, any status. */
  responses: number
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  errors: number
  timeouts: number
  non2xx: number
  /** Wall time of the run, in seconds. */
  wallSeconds: number
  /** CPU time of this process over the run (user plus system), in seconds. */
  cpuSeconds: number
  /** Shares (0–1) of the run that each core was busy. */
  serverCoreBusy: number
  loadCoreBusy: number
  /** The larger of the two cores' shares of the run stolen by the hypervisor. */
  steal: number
  /** Requests of a paced run that waited for a free connection; 0 for autocannon. */
  queued: number
}

/** Readings taken before a run, to measure the cores and the load generator's own CPU over it. */
interface RunStart {
  serverCore: CoreTimes
  loadCore: CoreTimes
  cpu: NodeJS.CpuUsage
  at: number
}

function startRun(request: LoadRequest): RunStart {
  return {
    serverCore: readCoreTimes(request.serverCore),
    loadCore: readCoreTimes(request.loadCore),
    cpu: process.cpuUsage(),
    at: performance.now(),
  }
}

/** Measures the parts of a `LoadResult` that both kinds of run share: wall and CPU time, core use. */
function finishRun(request: LoadRequest, start: RunStart) {
  const cpu = process.cpuUsage(start.cpu)
  const serverCoreAfter = readCoreTimes(request.serverCore)
  const loadCoreAfter = readCoreTimes(request.loadCore)
  return {
    wallSeconds: (performance.now() - start.at) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    serverCoreBusy: coreShare(start.serverCore, serverCoreAfter, 'busy'),
    loadCoreBusy: coreShare(start.loadCore, loadCoreAfter, 'busy'),
    steal: Math.max(
      coreShare(start.serverCore, serverCoreAfter, 'steal'),
      coreShare(start.loadCore, loadCoreAfter, 'steal'),
    ),
  }
}

/** Latencies of 2xx responses in milliseconds, grown as needed. */
class LatencyRecorder {
  #values = new Float64Array(1 << 16)
  #count = 0

  record(valueMs: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2)
      grown.set(this.#values)
      this.#values = grown
    }
    this.#values[this.#count++] = valueMs
  }

  sorted(): Float64Array {
    return this.#values.slice(0, this.#count).sort()
  }
}

function runLoad(request: LoadRequest): Promise<LoadResult> {
  return request.rate === undefined ? runAutocannon(request) : runPaced(request, request.rate)
}

function runAutocannon(request: LoadRequest): Promise<LoadResult> {
  const latencies = new LatencyRecorder()
  const start = startRun(request)

  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: request.url,
        connections: request.connections,
        duration: request.durationSeconds,
        headers: request.headers,
      },
      (err, result) => {
        if (err) {
          reject(err)
          return
        }
        const sorted = latencies.sorted()
        resolve({
          responses: result.requests.total,
          requestsPerSecond: result.requests.total / result.duration,
          p50Ms: percentile(sorted, 0.5),
          p99Ms: percentile(sorted, 0.99),
          errors: result.errors,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          queued: 0,
          ...finishRun(request, start),
        })
      },
    )
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      if (statusCode >= 200 && statusCode < 300) latencies.record(responseTimeMs)
    })
  })
}

async function runPaced(request: LoadRequest, rate: number): Promise<LoadResult> {
  const start = startRun(request)
  const paced = await runPacedLoad({
    url: request.url,
    rate,
    durationSeconds: request.durationSeconds,
    connections: request.connections,
    headers: request.headers,
  })
  return {
    responses: paced.responses,
    requestsPerSecond: paced.responses / request.durationSeconds,
    p50Ms: percentile(paced.latencies, 0.5),
    p99Ms: percentile(paced.latencies, 0.99),
    errors: paced.errors,
    timeouts: paced.unanswered,
    non2xx: paced.non2xx,
    queued: paced.queued,
    ...finishRun(request, start),
  }
}

if (process.send === undefined) {
  throw new Error('load.ts needs an IPC channel: start it through bench/run.ts or bench/profile.ts')
}

process.once('message', (request: LoadRequest) => {
  const reply = (message: object) => process.send?.(message, () => process.disconnect())
  runLoad(request).then(
    (result) => reply({ ok: true, result }),
    (err: unknown) => reply({ ok: false, message: String(err) }),
  )
})
process.send({ ready: true })
