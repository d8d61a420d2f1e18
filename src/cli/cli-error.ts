/**
 * The error the reader prints as one line on standard error before it exits
 * with the error's exit code, without a stack trace.
 */
import { findRedisErrorCause } from '../util/redis-error-cause'

/** Exit code for a failure at run time: the tracker is unreachable or cannot be read. */
export const EXIT_FAILURE = 1

/** Exit code for a wrong command line: unknown option, invalid value, unknown column. */
export const EXIT_USAGE = 2

export class CliError extends Error {
  override readonly name = 'CliError'
  readonly exitCode: number

  constructor(message: string, exitCode: number = EXIT_FAILURE) {
    super(message)
    this.exitCode = exitCode
  }
}

/**
 * Returns the message of any thrown value, on one line, with the cause that
 * an ioredis error keeps apart (`findRedisErrorCause`) in brackets.
 */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  const cause = findRedisErrorCause(error)
  // ioredis may fail a command with the very error of its last node, such as "Connection is closed.".
  const full = cause === undefined || cause === message ? message : `${message} (${cause})`
  return full.replace(/\s*\n\s*/g, ' ').trim()
}
