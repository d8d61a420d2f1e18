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
 * Listeners that only watch for the end of the process do not count as the
 * app's. The signal-exit package, which many libraries load, sends the
 * signal again once its listeners are the only ones left. Other copies of
 * web-top in the process clean up their own recorders at the same time,
 * and the last one to finish sends the signal again.
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
import { getProcessShared } from '../util/process-shared'

/** Max time the recorders get to clean up before the process ends, in milliseconds. */
const CLEANUP_TIMEOUT_MS = 3_000

const SIGNALS = ['SIGTERM', 'SIGINT'] as const

interface Closable {
  close(): Promise<void>
  /** Stops the recorder's servers from accepting connections, before `close()`. */
  stopAccepting(): void
}

/** The signal listeners of every copy of web-top in the process. */
interface SharedSignals {
  /** Copies of the package whose listener is installed. */
  listeners: number
  /** Copies whose cleanup runs. */
  cleanups: number
}

const shared = getProcessShared<SharedSignals>('signals', () => ({ listeners: 0, cleanups: 0 }))
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
  shared.listeners++
}

function uninstall(): void {
  if (!installed) return
  for (const signal of SIGNALS) process.off(signal, onSignal)
  installed = false
  shared.listeners--
}

function onSignal(signal: NodeJS.Signals): void {
  if (cleaningUp) {
    endWith(signal)
    return
  }
  if (process.listenerCount(signal) > shared.listeners + countSignalExitListeners()) return

  cleaningUp = true
  shared.cleanups++
  for (const recorder of recorders) recorder.stopAccepting()
  const closing = Promise.allSettled([...recorders].map((recorder) => recorder.close()))
  void settleWithin(closing, CLEANUP_TIMEOUT_MS).then(() => finishCleanup(signal))
}

/** Ends the process once no other copy of web-top is still cleaning up. */
function finishCleanup(signal: NodeJS.Signals): void {
  shared.cleanups--
  if (shared.cleanups > 0) uninstall()
  else endWith(signal)
}

/**
 * Returns the number of listeners per signal that the signal-exit package
 * installed: one per loaded copy, which version 4 counts on a registered
 * symbol and version 3 on `process`.
 */
function countSignalExitListeners(): number {
  const current = (globalThis as Record<symbol, { count?: unknown } | undefined>)[Symbol.for('signal-exit emitter')]
  const legacy = (process as { __signal_exit_emitter__?: { count?: unknown } }).__signal_exit_emitter__
  let count = 0
  for (const emitter of [current, legacy]) {
    if (typeof emitter?.count === 'number') count += emitter.count
  }
  return count
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
