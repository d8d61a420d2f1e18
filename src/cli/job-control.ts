/**
 * Job control for the full-screen views: Ctrl-Z, which raw mode reads as a
 * key, and SIGTSTP stop the view's process group with the terminal put
 * back, as a terminal's Ctrl-Z stops a job, and SIGCONT takes the screen
 * back. The whole group stops because under `npx`, `npm run` or `sh -c`
 * the shell waits for the wrapper, not for the view's process.
 */
import type { KeyHandler, TerminalScreen } from './screen'

export interface JobControl {
  /** Stops the process group for the shell, as Ctrl-Z does. */
  suspend(): void
  /**
   * Whether the view is stopped or has not had its SIGCONT yet. Timers
   * that fire before the SIGCONT listener runs must draw nothing, or they
   * draw on the shell's screen.
   */
  readonly suspended: boolean
  /** Removes the signal listeners. */
  remove(): void
}

/** Time after a discarded SIGTSTP at which the view takes its screen back, in ms. */
const ORPHANED_RESUME_MS = 50

/**
 * Adds the SIGTSTP and SIGCONT listeners of a view on `screen`. After
 * SIGCONT the screen's modes are set again, with `onKey` reading the keys,
 * and `redraw` draws the whole frame.
 */
export function watchJobControl(screen: TerminalScreen, onKey: KeyHandler, redraw: () => void): JobControl {
  let suspended = false
  // Without its listener, the SIGTSTP stops this process too; SIGCONT adds it back.
  const onSuspend = (): void => {
    if (suspended) return
    suspended = true
    screen.restore()
    process.off('SIGTSTP', onSuspend)
    process.kill(0, 'SIGTSTP')
    // A stop happens before kill() returns, so this timer runs only after
    // SIGCONT, where it repeats `onContinue`, which is harmless. In an
    // orphaned process group, such as a command that tmux or ssh runs
    // without a shell, the kernel discards SIGTSTP: no one could resume
    // the view, so it takes the screen back at once.
    setTimeout(() => {
      if (suspended) onContinue()
    }, ORPHANED_RESUME_MS).unref()
  }
  const onContinue = (): void => {
    if (suspended) {
      suspended = false
      process.on('SIGTSTP', onSuspend)
    }
    screen.reenter(onKey)
    redraw()
  }
  process.on('SIGTSTP', onSuspend)
  process.on('SIGCONT', onContinue)
  return {
    suspend: onSuspend,
    get suspended() {
      return suspended
    },
    remove() {
      process.off('SIGTSTP', onSuspend)
      process.off('SIGCONT', onContinue)
    },
  }
}
