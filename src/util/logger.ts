/**
 * The logger shape the package writes to: pino's and Fastify's loggers fit
 * it, and so does `console`-like code through `createConsoleLogger`.
 */

export interface Logger {
  warn(object: Record<string, unknown>, message: string): void
  error(object: Record<string, unknown>, message: string): void
  debug?(object: Record<string, unknown>, message: string): void
}

/** A logger that prints one line per message to standard error, prefixed with `web-top:`. */
export function createConsoleLogger(): Logger {
  const print = (level: string, object: Record<string, unknown>, message: string) => {
    const err = object.err instanceof Error ? ` (${object.err.message})` : ''
    const rest = Object.entries(object)
      .filter(([key]) => key !== 'err')
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' ')
    process.stderr.write(`web-top: ${level}: ${message}${err}${rest === '' ? '' : ` ${rest}`}\n`)
  }
  return {
    warn: (object, message) => print('warn', object, message),
    error: (object, message) => print('error', object, message),
  }
}

/** A logger that drops everything. */
export const silentLogger: Logger = Object.freeze({
  warn() {},
  error() {},
})

/**
 * Wraps a logger so that each message is written at most once per
 * `intervalMs`; the next write reports how many repeats were held back.
 */
export function createRateLimitedLogger(logger: Logger, intervalMs = 30_000): Logger {
  const lastWritten = new Map<string, { at: number; suppressed: number }>()

  const limit = (level: 'warn' | 'error') => (object: Record<string, unknown>, message: string) => {
    const now = Date.now()
    const entry = lastWritten.get(message)
    if (entry !== undefined && now - entry.at < intervalMs) {
      entry.suppressed++
      return
    }

    const suppressed = entry?.suppressed ?? 0
    lastWritten.set(message, { at: now, suppressed: 0 })
    logger[level](suppressed > 0 ? { ...object, repeated: suppressed } : object, message)
  }
  return { warn: limit('warn'), error: limit('error') }
}
