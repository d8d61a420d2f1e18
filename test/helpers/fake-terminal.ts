/**
 * A terminal and a keyboard for running `runLive` in-process: the view
 * writes frames to `FakeTerminal` and reads keys from `FakeKeyboard`.
 */
import { EventEmitter } from 'node:events'
import { DEFAULT_ACTIVE_COLUMNS, DEFAULT_COMPLETED_COLUMNS, parseColumnList } from '../../src/cli/columns'
import { runLive } from '../../src/cli/live'

/** Output that is a TTY. It stores each write, and the text of each row from the positioned lines the view writes. */
export class FakeTerminal extends EventEmitter {
  isTTY = true
  columns = 140
  rows = 40
  writes: string[] = []
  readonly #lines = new Map<number, string>()

  write(text: string): boolean {
    this.writes.push(text)
    // Each line is written as `ESC [ row ; 1 H`, then its text. `ESC [ J` after the position erases the rows from there down.
    const parts = text.split(/\x1b\[(\d+);1H/)
    for (let index = 1; index < parts.length; index += 2) {
      const row = Number(parts[index])
      const body = parts[index + 1] ?? ''
      if (body.startsWith('\x1b[J')) {
        for (const other of [...this.#lines.keys()]) if (other >= row) this.#lines.delete(other)
      } else {
        this.#lines.set(row, body.replace(/\x1b\[[\d;?]*[A-Za-z]/g, ''))
      }
    }
    return true
  }

  /** Returns the rows on screen, top to bottom, without escape sequences. */
  screen(): string {
    return [...this.#lines.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, line]) => line)
      .join('\n')
  }
}

/** Input that is a TTY. Emitting `data` with key text presses those keys. */
export class FakeKeyboard extends EventEmitter {
  isTTY = true
  setRawMode(): void {}
  setEncoding(): void {}
  resume(): void {}
  pause(): void {}
}

/** A `live` view running in this process, with its terminal, keyboard and exit code. */
export interface InProcessLive {
  terminal: FakeTerminal
  keyboard: FakeKeyboard
  exited: Promise<number>
}

/** Starts `runLive` on `trackerUrl` with the default columns, refreshing every `refreshRateSeconds`. */
export function startLiveInProcess(trackerUrl: string, refreshRateSeconds = 1, columns = 200): InProcessLive {
  const terminal = new FakeTerminal()
  terminal.columns = columns
  const keyboard = new FakeKeyboard()
  const exited = runLive(
    {
      trackerUrl,
      keyPrefix: undefined,
      refreshRateSeconds,
      activeColumns: parseColumnList(DEFAULT_ACTIVE_COLUMNS),
      completedColumns: parseColumnList(DEFAULT_COMPLETED_COLUMNS),
    },
    { stdout: terminal, stdin: keyboard },
  )
  return { terminal, keyboard, exited }
}
