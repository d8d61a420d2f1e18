import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { TerminalScreen, type TerminalInput } from '../src/cli/screen'

class FakeOutput {
  isTTY = true
  columns = 100
  rows = 40
  written = ''
  write(text: string): boolean {
    this.written += text
    return true
  }
}

class FakeInput extends EventEmitter implements TerminalInput {
  isTTY = true
  rawModes: boolean[] = []
  paused = true
  setRawMode(mode: boolean): void {
    this.rawModes.push(mode)
  }
  setEncoding(): void {}
  resume(): void {
    this.paused = false
  }
  pause(): void {
    this.paused = true
  }
}

describe('TerminalScreen', () => {
  it('enters the alternate screen with the cursor hidden and raw keys', () => {
    const output = new FakeOutput()
    const input = new FakeInput()
    const keys: string[] = []
    new TerminalScreen(output, input).enter((key) => keys.push(key))

    expect(output.written).toContain('\x1b[?1049h')
    expect(output.written).toContain('\x1b[?25l')
    expect(output.written).toContain('\x1b[?7l')
    expect(input.rawModes).toEqual([true])
    expect(input.paused).toBe(false)

    input.emit('data', 'xq\x03')
    expect(keys).toEqual(['x', 'q', '\x03'])
  })

  it('restores the terminal once, however often it is called', () => {
    const output = new FakeOutput()
    const input = new FakeInput()
    const screen = new TerminalScreen(output, input)
    screen.enter(() => {})
    output.written = ''

    screen.restore()
    screen.restore()

    expect(output.written).toBe('\x1b[?2026l\x1b[0m\x1b[?7h\x1b[?25h\x1b[?1049l')
    expect(input.rawModes).toEqual([true, false])
    expect(input.paused).toBe(true)
    expect(input.listenerCount('data')).toBe(0)
  })

  it('leaves raw mode alone when the input is not a terminal', () => {
    const input = new FakeInput()
    input.isTTY = false
    const screen = new TerminalScreen(new FakeOutput(), input)
    screen.enter(() => {})
    screen.restore()
    expect(input.rawModes).toEqual([])
  })

  it('falls back to 80x24 when the size is unknown', () => {
    const output = new FakeOutput()
    output.columns = 0
    output.rows = 0
    expect(new TerminalScreen(output, new FakeInput()).size()).toEqual({ width: 80, height: 24 })
  })
})
