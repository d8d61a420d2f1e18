/**
 * The exit after a terminal hangup, as when an ssh connection drops or a
 * tmux session is killed. At exit, Node 20 restores the terminal modes of
 * each standard stream that was a terminal at startup. On a terminal that
 * has hung up, that tcsetattr() fails with EIO, and Node aborts with
 * "Assertion failed" in node::ResetStdio() and a native stack trace
 * (checked with Node 20.20). A process that dies of SIGHUP skips that
 * step, so after a hangup the CLI ends that way, with exit status 129 as
 * for any program that a hangup ends.
 */
import { isatty } from 'node:tty'

/** Standard file descriptors that were terminals when the CLI started, as Node records them for its restore. */
const terminalsAtStartup = [0, 1, 2].filter((fd) => isatty(fd))

/**
 * Returns true when a standard stream that was a terminal at startup is no
 * longer one. isatty() fails with EIO on a terminal that has hung up.
 */
export function hasTerminalHungUp(): boolean {
  return terminalsAtStartup.some((fd) => !isatty(fd))
}

/**
 * Ends the process by SIGHUP: the listeners are removed, so the signal
 * takes its default action. On Linux the process dies before `kill`
 * returns, and the `exit` listeners do not run.
 */
export function exitByHangup(): never {
  process.removeAllListeners('SIGHUP')
  process.kill(process.pid, 'SIGHUP')
  // NOTE: reached only where a signal to the process itself is delivered later than on Linux.
  process.exit(129)
}

/** Exits with `code`, or by SIGHUP when the terminal has hung up, which Node could not restore. */
export function exitProcess(code: number): never {
  if (hasTerminalHungUp()) exitByHangup()
  process.exit(code)
}

/**
 * Ends the process by SIGHUP at once when `signal` is SIGHUP and the
 * terminal has hung up, so that nothing waits for connections to close
 * with no one left to see the output. Returns otherwise.
 */
export function exitOnHangup(signal: NodeJS.Signals): void {
  if (signal === 'SIGHUP' && hasTerminalHungUp()) exitByHangup()
}
