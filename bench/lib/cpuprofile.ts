/**
 * Summarises a V8 `.cpuprofile` (as written by `node --cpu-prof`): self
 * time per function, time per code origin, and the time spent under
 * web-top's own functions, per request.
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

interface CallFrame {
  functionName: string
  url: string
  /** Zero-based line of the code V8 ran: for TypeScript, of tsx's output, not of the .ts file. */
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  /** Microseconds on the monotonic clock. */
  startTime: number
  endTime: number
  samples: number[]
  /** Microseconds between a sample and the one before it. */
  timeDeltas: number[]
}

/**
 * Origin of a sampled function. `packages` is every other package and the
 * app: in a web-top server, the framework, its dependencies and the route
 * handler.
 */
export type Origin =
  | 'web-top'
  | 'ioredis'
  | 'packages'
  | 'node internals'
  | 'V8 and native'
  | 'garbage collector'

export interface FunctionTime {
  name: string
  location: string
  origin: Origin
  /** Share (0–1) of the busy samples. */
  share: number
  microsPerRequest: number
}

export interface ProfileSummary {
  busySamples: number
  idleShare: number
  /** Functions by self time, most first. */
  selfTime: FunctionTime[]
  /** Self time per origin. */
  origins: Array<{ origin: Origin; share: number; microsPerRequest: number }>
  /** Samples spent in web-top functions and in what they call, see `findInnermostWebTopFrame`. */
  underWebTop: { share: number; microsPerRequest: number }
  /** Samples under web-top, each counted for the innermost web-top function on its stack. */
  webTopFunctions: FunctionTime[]
}

export interface SummaryWindow {
  /** Monotonic microseconds; samples outside are ignored. */
  fromMicros: number
  toMicros: number
  /** Server CPU per request over the window, to turn shares into microseconds. */
  cpuMicrosPerRequest: number
}

const IDLE_FUNCTIONS = new Set(['(idle)'])

/** ioredis and the packages it parses replies and queues commands with. */
const IOREDIS_PACKAGES = new Set(['ioredis', 'redis-parser', 'denque'])

export function summarizeProfile(
  file: string,
  window: SummaryWindow,
  srcDir: string,
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const parents = buildParents(profile.nodes)

  const selfCounts = new Map<number, number>()
  let idle = 0
  let busy = 0
  let time = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0
    if (time < window.fromMicros || time > window.toMicros) continue

    const nodeId = profile.samples[i] as number
    if (IDLE_FUNCTIONS.has(nodes.get(nodeId)?.callFrame.functionName ?? '')) {
      idle++
      continue
    }
    busy++
    selfCounts.set(nodeId, (selfCounts.get(nodeId) ?? 0) + 1)
  }

  const toTime = (count: number) => ({
    share: count / busy,
    microsPerRequest: (count / busy) * window.cpuMicrosPerRequest,
  })
  const describe = (node: ProfileNode): Omit<FunctionTime, 'share' | 'microsPerRequest'> => ({
    name: node.callFrame.functionName || '(anonymous)',
    location: describeLocation(node.callFrame, srcDir),
    origin: classify(node.callFrame, srcDir),
  })

  const selfByFunction = new Map<string, { node: ProfileNode; count: number }>()
  const originCounts = new Map<Origin, number>()
  const webTopCounts = new Map<string, { node: ProfileNode; count: number }>()
  let underWebTop = 0

  for (const [nodeId, count] of selfCounts) {
    const node = nodes.get(nodeId) as ProfileNode
    const key = functionKey(node.callFrame)
    addCount(selfByFunction, key, node, count)
    const origin = classify(node.callFrame, srcDir)
    originCounts.set(origin, (originCounts.get(origin) ?? 0) + count)

    const innermost = findInnermostWebTopFrame(nodeId, nodes, parents, srcDir)
    if (innermost !== undefined) {
      underWebTop += count
      addCount(webTopCounts, functionKey(innermost.callFrame), innermost, count)
    }
  }

  const rank = (counts: Map<string, { node: ProfileNode; count: number }>) =>
    [...counts.values()]
      .sort((a, b) => b.count - a.count)
      .map(({ node, count }) => ({ ...describe(node), ...toTime(count) }))

  return {
    busySamples: busy,
    idleShare: idle / (idle + busy),
    selfTime: rank(selfByFunction),
    origins: [...originCounts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([origin, count]) => ({ origin, ...toTime(count) })),
    underWebTop: toTime(underWebTop),
    webTopFunctions: rank(webTopCounts),
  }
}

function buildParents(nodes: readonly ProfileNode[]): Map<number, number> {
  const parents = new Map<number, number>()
  for (const node of nodes) {
    for (const child of node.children ?? []) parents.set(child, node.id)
  }
  return parents
}

/**
 * Walks from the sampled frame toward the root and returns the first
 * web-top frame, unless a frame of another package or of the app comes
 * first. That frame means web-top handed control back: the Express
 * middleware and the Fastify hook call `next()`, and the rest of the
 * request runs below them on the same stack. The cost of such calls made
 * by web-top itself (Express's `app.get()`) is missed that way.
 */
function findInnermostWebTopFrame(
  nodeId: number,
  nodes: Map<number, ProfileNode>,
  parents: Map<number, number>,
  srcDir: string,
): ProfileNode | undefined {
  for (let id: number | undefined = nodeId; id !== undefined; id = parents.get(id)) {
    const node = nodes.get(id)
    if (node === undefined) continue
    const origin = classify(node.callFrame, srcDir)
    if (origin === 'web-top') return node
    if (origin === 'packages') return undefined
  }
  return undefined
}

function addCount(
  counts: Map<string, { node: ProfileNode; count: number }>,
  key: string,
  node: ProfileNode,
  count: number,
): void {
  const entry = counts.get(key)
  if (entry === undefined) counts.set(key, { node, count })
  else entry.count += count
}

function functionKey(frame: CallFrame): string {
  return `${frame.functionName}@${frame.url}:${frame.lineNumber}`
}

function isWebTop(url: string, srcDir: string): boolean {
  return url.includes(srcDir)
}

function classify(frame: CallFrame, srcDir: string): Origin {
  const { url, functionName } = frame
  if (isWebTop(url, srcDir)) return 'web-top'
  if (functionName === '(garbage collector)') return 'garbage collector'
  if (url === '') return 'V8 and native'
  if (url.startsWith('node:')) return 'node internals'

  const packageName = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1]
  if (packageName !== undefined && IOREDIS_PACKAGES.has(packageName)) return 'ioredis'
  return 'packages'
}

/**
 * Returns `file:line`, without the line for web-top's TypeScript: tsx runs
 * it as generated code whose line numbers do not match the .ts file.
 */
function describeLocation(frame: CallFrame, srcDir: string): string {
  if (frame.url === '') return ''
  if (isWebTop(frame.url, srcDir)) return shortenUrl(frame.url)
  return `${shortenUrl(frame.url)}:${frame.lineNumber + 1}`
}

function shortenUrl(url: string): string {
  const packagePath = /node_modules\/(.+)$/.exec(url)?.[1]
  if (packagePath !== undefined) return packagePath
  const srcPath = /\/(src\/.+)$/.exec(url)?.[1]
  if (srcPath !== undefined) return srcPath
  return url.startsWith('node:') ? url : basename(url)
}
