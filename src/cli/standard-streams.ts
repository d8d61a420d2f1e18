/**
 * Failures of standard output and standard error, and the exit once the
 * command has ended. A closed pipe on either stream does not change the
 * exit code of a command that ends by itself, so `web-top-cli check | head`
 * still exits 1 when the check fails.
 */
import { writeSync } from 'node:fs'
import { getSystemErrorMap } from 'node:util'
import { sanitizeText } from '../util/sanitize'
import { describeError, EXIT_FAILURE } from './cli-error'
import { exitByHangup, exitProcess, hasTerminalHungUp } from './hangup'

/**
 * Whether the command runs until it is interrupted (`live`, `tail`), so
 * that a closed standard output ends it with code 0.
 */
let endsOnClosedOutput = false

/**
 * Listens for failures of standard output and standard error. Call it
 * before any command registers its own listener, so that this one decides.
 */
export function watchStandardStreams(): void {
  process.stdout.on('error', exitOnOutputError)
  // Standard error is where failures are reported, so a failure of its own
  // cannot be reported anywhere. Without a listener, Node would crash with
  // exit code 1 and turn a success or a usage error (2) into 1.
  process.stderr.on('error', () => undefined)
}

/** Makes a closed standard output end the command with code 0, for commands that run until interrupted. */
export function endOnClosedOutput(): void {
  endsOnClosedOutput = true
}

/**
 * Standard error for the CLI's messages, with each line made safe for a
 * terminal (`sanitizeText`). Messages quote error replies of the server and
 * of the command line, which may hold escape sequences.
 */
export const messageStream = {
  write(text: string): boolean {
    return process.stderr.write(sanitizeMessage(text))
  },
}

/** Replaces the unsafe characters of each line of `text`, keeping the line ends. */
export function sanitizeMessage(text: string): string {
  return text.split('\n').map(sanitizeText).join('\n')
}

/**
 * Sets the exit code and, after a failure, exits once standard error has
 * taken the message. A client may still hold a socket to a server that does
 * not reply. ioredis destroys such a socket only 2 s after ending it, and
 * twice in a row when a command fails meanwhile, so the process would stay
 * up about 4 s past the deadline that the message states.
 */
export function exitOnceReported(code: number): void {
  process.exitCode = code
  if (code !== 0) process.stderr.write('', () => exitProcess(code))
}

/**
 * Exits as soon as standard output and standard error have taken what was
 * written. A command returns once it has closed its connections, or at
 * once on a quit of `live` while it still connects. Handles may still keep
 * the process up after that. One is the connection being opened, with its
 * socket and the 5 s connect deadline. Another is the 50 ms interval on
 * which redis-parser 3 (used by ioredis 5) shrinks its buffer pool after a
 * reply of large records: it ran for about 2 s after `recent` read 5 MB.
 */
export function exitOnceFlushed(code: number): void {
  process.exitCode = code
  process.stdout.write('', () => {
    // A write that failed just before calls back here before Node emits its 'error' event.
    const error = process.stdout.errored
    if (error !== null) exitOnOutputError(error)
    process.stderr.write('', () => exitProcess(code))
  })
}

/**
 * Handles a failure of standard output. A reader that stops early (`| head`)
 * closes the pipe (EPIPE). That ends `live` and `tail` quietly with code 0,
 * as other command-line tools do. Any other command goes on without its
 * output and exits with its own code, which for `check` is the verdict.
 * Any other error (ENOSPC on a full disk, EIO) is reported on one line and
 * exits 1. The line is written synchronously and the exit comes at once, so
 * a command's own handler (`live` prints its own message) never runs, and
 * `live` restores the terminal on exit. EIO on a terminal that has hung up
 * ends the process by SIGHUP, with nothing reported, because the terminal
 * is gone and Node would abort restoring it (see `./hangup`).
 *
 * NOTE: a closed standard output (`>&-`) cannot be reported. Node opens
 * /dev/null in place of a closed standard stream before any script runs,
 * so the output is discarded as with `> /dev/null`.
 */
function exitOnOutputError(error: NodeJS.ErrnoException): void {
  if (hasTerminalHungUp()) exitByHangup()
  if (error.code === 'EPIPE') {
    if (endsOnClosedOutput) exitProcess(0)
    return
  }
  try {
    writeSync(2, `web-top-cli: cannot write to standard output: ${describeSystemError(error)}\n`)
  } catch {
    // Standard error fails too: the exit code is all that is left.
  }
  exitProcess(EXIT_FAILURE)
}

/** Returns the system's text for an error with its code, "no space left on device (ENOSPC)". */
function describeSystemError(error: NodeJS.ErrnoException): string {
  const known = typeof error.errno === 'number' ? getSystemErrorMap().get(error.errno) : undefined
  if (known === undefined) return describeError(error)
  const [code, text] = known
  return `${text} (${code})`
}
