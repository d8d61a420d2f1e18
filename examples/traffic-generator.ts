/**
 * Sends real HTTP requests to the example apps: a weighted mix of their
 * routes, methods and user agents, from a fixed number of concurrent
 * clients, until a request count, a duration or an abort signal ends it.
 * Counts every response by origin, method, path and status, so that a test
 * can compare them with what the tracker recorded.
 */
import http from 'node:http'
import https from 'node:https'

export interface TrafficOptions {
  /** Base URLs of the apps, such as `http://127.0.0.1:3000`. Requests go to them in turn. */
  urls: string[]
  /** Number of requests to send. */
  requests?: number | undefined
  /** Time after which no new request starts, in milliseconds. */
  durationMs?: number | undefined
  /** Stops sending when aborted; requests in flight still finish. */
  signal?: AbortSignal | undefined
  /**
   * Requests in flight at once.
   * @default 10
   */
  concurrency?: number | undefined
  /** Maximum requests started per second, over all clients. Unlimited when unset. */
  ratePerSecond?: number | undefined
  /**
   * Share of requests that go to `GET /slow`, from 0 to 1.
   * @default 0.12
   */
  slowShare?: number | undefined
  /**
   * Time allowed for each request, in milliseconds.
   * @default 10000
   */
  timeoutMs?: number | undefined
  /** Sends to hosts other than loopback addresses. Off by default. */
  allowRemote?: boolean | undefined
}

/** Number of responses for one origin, method, path and status. */
export interface RouteCount {
  origin: string
  method: string
  /** Path without the query string, as the tracker records it. */
  path: string
  /** HTTP status, or `error` for a request that got no response. */
  status: number | 'error'
  count: number
}

export interface TrafficSummary {
  /** Requests sent, whatever their outcome. */
  total: number
  elapsedMs: number
  /** Responses per status; `error` counts requests that got no response. */
  byStatus: Record<string, number>
  byRoute: RouteCount[]
  /** Time from sending each request to the end of its response, in milliseconds, for the requests that got one. */
  durationsMs: number[]
  /** Messages of the first few failed requests. */
  errors: string[]
}

interface PlannedRequest {
  method: string
  path: string
  body?: string
}

interface RouteChoice {
  weight: number
  plan: () => PlannedRequest
}

const USER_AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'curl/8.5.0',
  'python-requests/2.32.3',
  'Go-http-client/1.1',
  'kube-probe/1.30',
]

/** Simulated `CF-IPCOUNTRY` values, so that the Country column has something to show. */
const COUNTRIES = ['FI', 'DE', 'US', 'JP', 'BR', 'IN']

const MAX_ERRORS_KEPT = 5

/** Returns true for `localhost` and IPv4 and IPv6 loopback addresses. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase()
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/**
 * Parses and checks the target URLs. Throws a `RangeError` for a host that
 * is not a loopback address unless `allowRemote` is set.
 */
export function parseTargets(urls: string[], allowRemote = false): URL[] {
  if (urls.length === 0) {
    throw new RangeError('At least one target URL is needed (--url http://127.0.0.1:3000).')
  }

  return urls.map((text) => {
    let url: URL
    try {
      url = new URL(text)
    } catch {
      throw new RangeError(`Invalid target URL ${JSON.stringify(text)}: expected http://host:port`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RangeError(`Invalid target URL ${JSON.stringify(text)}: expected http:// or https://`)
    }
    if (!allowRemote && !isLoopbackHost(url.hostname)) {
      throw new RangeError(
        `Target ${url.origin} is not a loopback address; pass --allow-remote to send traffic to it.`,
      )
    }
    return url
  })
}

/** Sends the traffic and resolves with the counts once every request has finished. */
export async function generateTraffic(options: TrafficOptions): Promise<TrafficSummary> {
  const targets = parseTargets(options.urls, options.allowRemote)
  const limit = options.requests ?? Infinity
  const deadline = options.durationMs === undefined ? Infinity : Date.now() + options.durationMs
  if (limit === Infinity && deadline === Infinity && options.signal === undefined) {
    throw new RangeError('Traffic needs an end: set a number of requests, a duration or an abort signal.')
  }

  const concurrency = options.concurrency ?? 10
  const routes = buildRouteMix(options.slowShare ?? 0.12)
  const timeoutMs = options.timeoutMs ?? 10_000
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) }
  const counts = new Map<string, RouteCount>()
  const errors: string[] = []
  const durationsMs: number[] = []
  const startedAt = Date.now()
  let sent = 0
  let nextStartAt = startedAt

  const mayStart = () => sent < limit && Date.now() < deadline && options.signal?.aborted !== true

  async function runClient(): Promise<void> {
    while (mayStart()) {
      if (options.ratePerSecond !== undefined) {
        const slotAt = Math.max(nextStartAt, Date.now())
        nextStartAt = slotAt + 1000 / options.ratePerSecond
        if (slotAt > Date.now()) await abortableSleep(slotAt - Date.now(), options.signal)
        if (!mayStart()) return
      }

      const target = targets[sent % targets.length] as URL
      sent++
      const planned = pickRoute(routes).plan()
      const sentAt = performance.now()
      const status = await sendRequest(target, planned, agents, timeoutMs).catch((err: unknown) => {
        if (errors.length < MAX_ERRORS_KEPT) {
          errors.push(`${planned.method} ${target.origin}${planned.path}: ${String(err)}`)
        }
        return 'error' as const
      })
      if (status !== 'error') durationsMs.push(performance.now() - sentAt)
      countResponse(counts, target.origin, planned, status)
    }
  }

  try {
    await Promise.all(Array.from({ length: concurrency }, runClient))
  } finally {
    agents.http.destroy()
    agents.https.destroy()
  }
  return { ...summarize(counts, sent, Date.now() - startedAt, errors), durationsMs }
}

/** Builds the weighted mix of requests. Each route returns a known status in both example apps. */
function buildRouteMix(slowShare: number): RouteChoice[] {
  const userId = () => String(1 + Math.floor(Math.random() * 500))
  const json = (value: object) => JSON.stringify(value)
  const others: RouteChoice[] = [
    { weight: 30, plan: () => ({ method: 'GET', path: Math.random() < 0.3 ? '/?page=2&sort=name' : '/' }) },
    { weight: 25, plan: () => ({ method: 'GET', path: `/users/${userId()}` }) },
    { weight: 6, plan: () => ({ method: 'POST', path: '/users', body: json({ name: 'new user' }) }) },
    { weight: 6, plan: () => ({ method: 'PUT', path: `/users/${userId()}`, body: json({ name: 'new name' }) }) },
    { weight: 5, plan: () => ({ method: 'DELETE', path: `/users/${userId()}` }) },
    { weight: 6, plan: () => ({ method: 'GET', path: '/fail' }) },
    { weight: 3, plan: () => ({ method: 'GET', path: '/users/nobody' }) },
    { weight: 3, plan: () => ({ method: 'GET', path: '/missing' }) },
  ]

  const share = Math.min(Math.max(slowShare, 0), 1)
  const otherWeight = others.reduce((sum, route) => sum + route.weight, 0)
  const slowWeight = share >= 1 ? 1 : (otherWeight * share) / (1 - share)
  const slow: RouteChoice = { weight: slowWeight, plan: () => ({ method: 'GET', path: '/slow' }) }
  return share >= 1 ? [slow] : [...others, slow]
}

function pickRoute(routes: RouteChoice[]): RouteChoice {
  const total = routes.reduce((sum, route) => sum + route.weight, 0)
  let point = Math.random() * total
  for (const route of routes) {
    point -= route.weight
    if (point < 0) return route
  }
  return routes[routes.length - 1] as RouteChoice
}

/** Sends one request and resolves with its status once the whole body has arrived. */
function sendRequest(
  target: URL,
  planned: PlannedRequest,
  agents: { http: http.Agent; https: https.Agent },
  timeoutMs: number,
): Promise<number> {
  const secure = target.protocol === 'https:'
  const headers: Record<string, string> = {
    'user-agent': pick(USER_AGENTS),
    'cf-ipcountry': pick(COUNTRIES),
    accept: 'application/json',
  }
  if (planned.body !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(planned.body))
  }

  return new Promise((resolve, reject) => {
    const request = (secure ? https : http).request(
      new URL(planned.path, target),
      { method: planned.method, headers, agent: secure ? agents.https : agents.http, timeout: timeoutMs },
      (response) => {
        response.resume()
        response.once('end', () => resolve(response.statusCode ?? 0))
        response.once('error', reject)
      },
    )
    request.once('timeout', () => request.destroy(new Error(`no response within ${timeoutMs} ms`)))
    request.once('error', reject)
    request.end(planned.body)
  })
}

function countResponse(
  counts: Map<string, RouteCount>,
  origin: string,
  planned: PlannedRequest,
  status: number | 'error',
): void {
  const path = planned.path.split('?')[0] as string
  const key = `${origin} ${planned.method} ${path} ${status}`
  const entry = counts.get(key)
  if (entry === undefined) counts.set(key, { origin, method: planned.method, path, status, count: 1 })
  else entry.count++
}

function summarize(
  counts: Map<string, RouteCount>,
  total: number,
  elapsedMs: number,
  errors: string[],
): Omit<TrafficSummary, 'durationsMs'> {
  const byStatus: Record<string, number> = {}
  for (const { status, count } of counts.values()) byStatus[status] = (byStatus[status] ?? 0) + count
  return { total, elapsedMs, byStatus, byRoute: [...counts.values()], errors }
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T
}

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
  })
}
