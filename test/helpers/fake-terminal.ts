/**
 * A terminal and a keyboard for running `runLive` in-process: the view
 * writes frames to `FakeTerminal` and reads keys from `FakeKeyboard`.
 */
import { EventEmitter } from 'node:events'

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
