/**
 * The logger shape the package writes to: pino's and Fastify's loggers fit
 * it, and so does `console`-like code through `createConsoleLogger`.
 */
import { hideArgumentEcho } from './redis-error-cause'

export interface Logger {
  warn(object: Record<string, unknown>, message: string): void
  error(object: Record<string, unknown>, message: string): void
  /**
   * Written once per recorder, when it opens its Redis tracker, and when
   * Redis takes writes again after rejecting some. Without it, the second
   * goes to `warn`.
   */
  info?(object: Record<string, unknown>, message: string): void
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
    info: (object, message) => print('info', object, message),
  }
}

/** A logger that drops everything. */
export const silentLogger: Logger = Object.freeze({
  warn() {},
  error() {},
})

/** Loggers that threw once already, so that the notice about them is printed once. */
const failedLoggers = new WeakSet<Logger>()

/** Loggers that `guardLogger` returned, which it returns as they are. */
const guardedLoggers = new WeakSet<Logger>()

/**
 * Wraps an app's logger so that an exception it throws, or a rejection of
 * the promise an async logger returns, never reaches the code that logged.
 * That code may run inside a Redis client's event handler, where a throw
 * would crash the app. The first such exception is printed to standard
 * error, and the message is dropped.
 */
export function guardLogger(logger: Logger): Logger {
  if (guardedLoggers.has(logger)) return logger
  const report = (err: unknown, message: string) => {
    if (failedLoggers.has(logger)) return
    failedLoggers.add(logger)
    const reason = describeThrownValue(err)
    process.stderr.write(
      `web-top: error: the logger given in the \`logger\` option threw (${reason}) on the message ` +
        `"${message}"; web-top drops its messages that throw, so fix the logger to see them\n`,
    )
  }
  const write = (level: 'warn' | 'error' | 'info' | 'debug', object: Record<string, unknown>, message: string) => {
    const fields = loggableFields(object)
    try {
      const result: unknown = logger[level]?.(fields, message)
      // An async logger rejects instead of throwing, and an unhandled rejection ends the process.
      if (isThenable(result)) result.then(undefined, (err: unknown) => report(err, message))
    } catch (err) {
      report(err, message)
    }
  }
  const guarded: Logger = {
    warn: (object, message) => write('warn', object, message),
    error: (object, message) => write('error', object, message),
  }
  if (typeof logger.info === 'function') guarded.info = (object, message) => write('info', object, message)
  if (typeof logger.debug === 'function') guarded.debug = (object, message) => write('debug', object, message)
  guardedLoggers.add(guarded)
  return guarded
}

/** The `err` field written in place of a thrown value whose properties throw when read. */
const UNREADABLE_ERROR = 'the thrown value could not be read, because reading its properties threw'

/**
 * Returns the fields to pass to a logger, with secrets and Redis's echoes
 * hidden. An `err` whose properties throw when read, such as a Proxy that
 * an app's `ignore` function threw, is replaced by an error stating this.
 * Passed on, it would make the logger throw, and the notice would then
 * blame the logger for a fault of the value.
 */
function loggableFields(object: Record<string, unknown>): Record<string, unknown> {
  try {
    readErrorProperties(object.err)
    for (const value of Object.values(object)) hideCommandSecrets(value)
    return hideArgumentEchoes(object)
  } catch {
    return hideArgumentEchoes({ ...object, err: new Error(UNREADABLE_ERROR) })
  }
}

/**
 * Reads the properties of `err` that loggers read (pino's error serializer
 * and `createConsoleLogger`), so that a getter or Proxy trap that throws
 * does so here.
 */
function readErrorProperties(err: unknown): void {
  if ((typeof err !== 'object' && typeof err !== 'function') || err === null) return
  void (err instanceof Error)
  const fields = err as Record<string, unknown>
  void [fields.name, fields.message, fields.stack, fields.cause, fields.code, fields.command]
  for (const key of Object.keys(err)) void fields[key]
}

/** Returns the message of a value that a logger threw, or a note when the value cannot be read either. */
function describeThrownValue(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err)
  } catch {
    return 'a value that could not be read'
  }
}

/**
 * Commands whose arguments can contain a password. ioredis sends AUTH or
 * HELLO while it connects; the others come only from an app's own client.
 */
const COMMANDS_WITH_SECRETS = new Set(['auth', 'hello', 'migrate', 'config', 'acl'])

/**
 * Replaces the arguments of a Redis command that an ioredis error carries
 * (`err.command.args`) when the command can hold a password. ioredis puts
 * the command on every error reply, so a wrong password in the tracker URL
 * would otherwise reach any logger that prints the error's fields, as pino
 * does. The errors that an error carries are masked too, such as the
 * `lastNodeError` of a Cluster client that failed to connect. Each error is
 * changed in place, so that its other fields stay.
 */
function hideCommandSecrets(err: unknown, depth = 0): void {
  if (typeof err !== 'object' || err === null || depth > NESTED_ERROR_DEPTH) return
  const { command, lastNodeError, previousErrors, cause, errors } = err as Record<string, unknown>
  hideArguments(command)
  hideCommandSecrets(lastNodeError, depth + 1)
  hideCommandSecrets(cause, depth + 1)
  for (const list of [previousErrors, errors]) {
    if (Array.isArray(list)) for (const nested of list) hideCommandSecrets(nested, depth + 1)
  }
}

/**
 * Maximum depth of the carried errors (`lastNodeError`, `previousErrors`,
 * `cause`, `errors`) that `hideCommandSecrets` masks. The limit also ends
 * the walk on an error that refers to itself.
 */
const NESTED_ERROR_DEPTH = 3

function hideArguments(command: unknown): void {
  if (typeof command !== 'object' || command === null) return
  const { name, args } = command as { name?: unknown; args?: unknown }
  if (typeof name !== 'string' || !Array.isArray(args) || !COMMANDS_WITH_SECRETS.has(name.toLowerCase())) return
  ;(command as { args: unknown }).args = args.map(() => '***')
}

/**
 * Returns the fields with Redis's echo of command arguments left out of
 * every string and error message among them (`hideArgumentEcho`), because
 * the echo can carry pieces of task records. An error with an echo is
 * replaced by a copy, so that the app's own reference to it stays as it
 * was.
 */
function hideArgumentEchoes(object: Record<string, unknown>): Record<string, unknown> {
  let hidden: Record<string, unknown> | undefined
  for (const [key, value] of Object.entries(object)) {
    const replaced = hideEchoIn(value)
    if (replaced === value) continue
    hidden ??= { ...object }
    hidden[key] = replaced
  }
  return hidden ?? object
}

function hideEchoIn(value: unknown): unknown {
  if (typeof value === 'string') return hideArgumentEcho(value)
  if (!(value instanceof Error)) return value
  const message = hideArgumentEcho(value.message)
  if (message === value.message) return value
  // The copy keeps the class, so loggers still print the error's type, and every own field such as `command`.
  const copy = Object.create(Object.getPrototypeOf(value) as object, Object.getOwnPropertyDescriptors(value)) as Error
  Object.defineProperty(copy, 'message', { value: message, writable: true, configurable: true })
  const stack = value.stack === undefined ? undefined : hideArgumentEcho(value.stack)
  Object.defineProperty(copy, 'stack', { value: stack, writable: true, configurable: true })
  return copy
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

/** A logger that writes each message at most once per interval, except recoveries (`createRateLimitedLogger`). */
export interface RateLimitedLogger extends Logger {
  /**
   * Writes `message`, which reports that a failure logged as one of
   * `failures` is over, as `warn` does. It is written even within its
   * interval when one of `failures` was written after it last was, so that
   * the log does not end on a failure that is over.
   */
  warnRecovery(object: Record<string, unknown>, message: string, failures: readonly string[]): void
  /** Writes a recovery as `warnRecovery` does, at `info` level, or at `warn` when the logger has no `info`. */
  infoRecovery(object: Record<string, unknown>, message: string, failures: readonly string[]): void
}

/**
 * Wraps a logger so that each message is written at most once per
 * `intervalMs`; the next write reports how many repeats were held back.
 * An exception thrown by `logger` is caught, as `guardLogger` describes.
 */
export function createRateLimitedLogger(logger: Logger, intervalMs = 30_000): RateLimitedLogger {
  logger = guardLogger(logger)
  const lastWritten = new Map<string, { at: number; suppressed: number }>()
  // Counts writes, so that two in the same millisecond still have an order.
  let writes = 0
  const writtenAs = new Map<string, number>()

  const write = (level: 'warn' | 'error' | 'info', object: Record<string, unknown>, message: string, force: boolean) => {
    const now = Date.now()
    const entry = lastWritten.get(message)
    if (!force && entry !== undefined && now - entry.at < intervalMs) {
      entry.suppressed++
      return
    }

    const suppressed = entry?.suppressed ?? 0
    lastWritten.set(message, { at: now, suppressed: 0 })
    writtenAs.set(message, ++writes)
    const fields = suppressed > 0 ? { ...object, repeated: suppressed } : object
    if (level === 'info') (logger.info ?? logger.warn)(fields, message)
    else logger[level](fields, message)
  }
  const writeRecovery = (
    level: 'warn' | 'info',
    object: Record<string, unknown>,
    message: string,
    failures: readonly string[],
  ) => {
    const recoveredAs = writtenAs.get(message) ?? 0
    const failureSince = failures.some((failure) => (writtenAs.get(failure) ?? 0) > recoveredAs)
    write(level, object, message, failureSince)
  }
  const limited: RateLimitedLogger = {
    warn: (object, message) => write('warn', object, message, false),
    error: (object, message) => write('error', object, message, false),
    warnRecovery: (object, message, failures) => writeRecovery('warn', object, message, failures),
    infoRecovery: (object, message, failures) => writeRecovery('info', object, message, failures),
  }
  // Its writes go through the guarded logger, so guarding it again adds nothing.
  guardedLoggers.add(limited)
  return limited
}
