/**
 * The frameworks and add-on variants the benchmark compares, shared by the
 * orchestrator and the server child.
 */

export const FRAMEWORKS = ['express', 'fastify'] as const
export type Framework = (typeof FRAMEWORKS)[number]

export const VARIANTS = [
  'baseline',
  'web-top-redis',
  'web-top-memory',
  'logger',
  'metrics',
] as const
export type Variant = (typeof VARIANTS)[number]

/** Returns the label printed for a variant: the add-on as the framework's users know it. */
export function variantLabel(framework: Framework, variant: Variant): string {
  switch (variant) {
    case 'baseline':
      return 'baseline (no add-on)'
    case 'web-top-redis':
      return 'web-top, Redis tracker'
    case 'web-top-memory':
      return 'web-top, memory tracker'
    case 'logger':
      return framework === 'express' ? 'pino-http to /dev/null' : 'Fastify logger to /dev/null'
    case 'metrics':
      return framework === 'express' ? 'express-prom-bundle' : 'fastify-metrics'
  }
}

export function isFramework(value: unknown): value is Framework {
  return (FRAMEWORKS as readonly unknown[]).includes(value)
}

export function isVariant(value: unknown): value is Variant {
  return (VARIANTS as readonly unknown[]).includes(value)
}

/** Messages the orchestrator sends to a server child over IPC. */
export type ServerCommand = { type: 'stats' } | { type: 'hold-next' } | { type: 'close' }

/** Counters a server child reports over IPC. */
export interface ServerStats {
  /** User plus system CPU time of the server process since it started, in microseconds. */
  cpuMicros: number
  /** The system (kernel) part of `cpuMicros`. */
  systemCpuMicros: number
  /**
   * The monotonic clock (`process.hrtime`) when the stats were read, in
   * microseconds, to cut a CPU profile to a window.
   */
  monotonicMicros: number
  /** Requests whose route handler ran. */
  handled: number
  /** Write counters of the web-top tracker, or null for variants without web-top. */
  tracker: { written: number; dropped: number; pendingBytes: number } | null
}

/** Messages a server child sends to the orchestrator over IPC. */
export type ServerMessage =
  | { type: 'ready'; port: number }
  | ({ type: 'stats' } & ServerStats)
  | { type: 'held' }
  | { type: 'closed' }
