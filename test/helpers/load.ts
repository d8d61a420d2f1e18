/**
 * A small load generator for the fault tests: requests over keep-alive
 * connections with a fixed number in flight, each checked for status and
 * body and timed.
 */
import { Agent, request } from 'node:http'

export interface LoadResult {
  /** Time from sending each request to reading its whole response, in milliseconds. */
  latenciesMs: number[]
  /** Responses whose status or body differed from the expected ones, as `status body`. */
  unexpected: string[]
  /** Requests that failed without a response. */
  errors: string[]
}

export interface LoadOptions {
  /** Requests in flight at any time. */
  concurrency: number
  /** Stops after this many requests. */
  count?: number
  /** Stops sending once this returns true (checked before each request). */
  stop?: () => boolean
  expectedStatus?: number
  expectedBody?: string
}

/** Sends GET requests to `url` until `count` is reached or `stop()` returns true. */
export async function runLoad(url: string, options: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency })
  const result: LoadResult = { latenciesMs: [], unexpected: [], errors: [] }
  let sent = 0
  const shouldSend = () => {
    if (options.count !== undefined && sent >= options.count) return false
    return !(options.stop?.() ?? false)
  }

  const worker = async () => {
    while (shouldSend()) {
      sent++
      const startedAt = performance.now()
      try {
        const { status, body } = await get(url, agent)
        result.latenciesMs.push(performance.now() - startedAt)
        const statusOk = status === (options.expectedStatus ?? 200)
        const bodyOk = options.expectedBody === undefined || body === options.expectedBody
        if (!statusOk || !bodyOk) result.unexpected.push(`${status} ${body.slice(0, 80)}`)
      } catch (err) {
        result.errors.push(String(err))
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  agent.destroy()
  return result
}

/** Returns the `p`th percentile (0 to 100) of `values`, by the nearest-rank method. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] as number
}

function get(url: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.setTimeout(10_000, () => req.destroy(new Error('no response within 10 s')))
    req.on('error', reject)
    req.end()
  })
}
