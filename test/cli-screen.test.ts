import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { composeScreenFrame, composeScreenUpdate, TerminalScreen, type TerminalInput } from '../src/cli/screen'

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

    input.emit('data', 'xq\x03\x1b[A\r')
    expect(keys).toEqual(['x', 'q', 'ctrl-c', 'up', 'enter'])
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

describe('composeScreenFrame', () => {
  it('positions and erases each line and clears below the last', () => {
    expect(composeScreenFrame(['a', 'b'], 5, false)).toBe(
      '\x1b[?2026h\x1b[1;1H\x1b[2Ka\x1b[0m\x1b[2;1H\x1b[2Kb\x1b[0m\x1b[3;1H\x1b[J\x1b[?2026l',
    )
  })

  it('does not clear below a frame that fills the screen', () => {
    expect(composeScreenFrame(['a', 'b'], 2, false)).not.toContain('\x1b[J')
  })
})

describe('composeScreenUpdate', () => {
  it('clears and draws everything without a previous frame', () => {
    expect(composeScreenUpdate(undefined, ['a'], 3)).toBe(composeScreenFrame(['a'], 3, true))
  })

  it('writes only the lines that changed', () => {
    expect(composeScreenUpdate(['a', 'b', 'c'], ['a', 'B', 'c'], 5)).toBe(
      '\x1b[?2026h\x1b[2;1H\x1b[2KB\x1b[0m\x1b[?2026l',
    )
  })

  it('writes nothing for an unchanged frame', () => {
    expect(composeScreenUpdate(['a', 'b'], ['a', 'b'], 5)).toBe('')
  })

  it('clears below a frame that got shorter', () => {
    expect(composeScreenUpdate(['a', 'b', 'c'], ['a'], 5)).toBe('\x1b[?2026h\x1b[2;1H\x1b[J\x1b[?2026l')
  })
})
