/**
 * Cleanup on SIGTERM and SIGINT, for apps that do not handle these signals.
 *
 * Without a listener, Node ends the process at once on these signals, and
 * the active entries of its requests stay in Redis until a reader prunes
 * them. A listener would stop Node from exiting, so this one acts only
 * when it is the only listener for the signal at the moment the signal
 * arrives: it stops the recorders' HTTP servers from accepting
 * connections, closes every open recorder (at most 3 s), removes itself and
 * sends the same signal again, which ends the process the way Node would
 * have. When the app listens too, the app decides: closing its server
 * (Express) or calling `app.close()` (Fastify) then closes the recorder.
 *
 * The listener is prepended, so that it runs before any `once` listener of
 * the app removes itself and hides from the count. It stays installed
 * until the cleanup is done: tsx (4.x, as `tsx app.ts`) adds a listener
 * that it hides from `listenerCount` and that exits the process at once
 * when no other listener is left, even one that has already run. A second
 * signal during the cleanup ends the process without waiting.
 */
import { constants } from 'node:os'
import { isMainThread } from 'node:worker_threads'
import { settleWithin } from '../util/deadline'

/** Max time the recorders get to clean up before the process ends, in milliseconds. */
const CLEANUP_TIMEOUT_MS = 3_000

const SIGNALS = ['SIGTERM', 'SIGINT'] as const

interface Closable {
  close(): Promise<void>
  /** Stops the recorder's servers from accepting connections, before `close()`. */
  stopAccepting(): void
}

const recorders = new Set<Closable>()
let installed = false
let cleaningUp = false

/** Closes `recorder` on SIGTERM and SIGINT when the app has no listener of its own. */
export function closeOnSignal(recorder: Closable): void {
  // Signals are delivered to the main thread only.
  if (!isMainThread) return
  recorders.add(recorder)
  if (!installed) install()
}

/** Stops closing `recorder` on signals, once it closed by itself. */
export function stopClosingOnSignal(recorder: Closable): void {
  recorders.delete(recorder)
  // During the cleanup, the listener stays until the signal is sent again.
  if (recorders.size === 0 && installed && !cleaningUp) uninstall()
}

function install(): void {
  for (const signal of SIGNALS) process.prependListener(signal, onSignal)
  installed = true
}

function uninstall(): void {
  for (const signal of SIGNALS) process.off(signal, onSignal)
  installed = false
}

function onSignal(signal: NodeJS.Signals): void {
  if (cleaningUp) {
    endWith(signal)
    return
  }
  if (process.listenerCount(signal) > 1) return

  cleaningUp = true
  for (const recorder of recorders) recorder.stopAccepting()
  const closing = Promise.allSettled([...recorders].map((recorder) => recorder.close()))
  void settleWithin(closing, CLEANUP_TIMEOUT_MS).then(() => endWith(signal))
}

/**
 * Ends the process the way Node would have on `signal` without this
 * listener. As PID 1, in a container without an init process, the kernel
 * ignores a signal that has no handler, so the process exits with the code
 * a shell reports for that signal (143 for SIGTERM, 130 for SIGINT).
 */
function endWith(signal: NodeJS.Signals): void {
  uninstall()
  if (process.pid === 1) process.exit(128 + constants.signals[signal])
  process.kill(process.pid, signal)
}
