/**
 * The refresh loop of `live`, run in-process on the shared memory tracker
 * with a fake terminal, so frame counts and timing can be checked exactly.
 */
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_ACTIVE_COLUMNS, DEFAULT_COMPLETED_COLUMNS, parseColumnList } from '../src/cli/columns'
import { runLive } from '../src/cli/live'
import { getSharedMemoryTracker } from '../src/trackers/from-url'

/** Completed long ago, so that no cell of its row changes within a minute. */
const OLD_RECORD = JSON.stringify({
  task_id: 'old',
  method: 'GET',
  path: '/old',
  started_at: '2020-01-01T00:00:00+00:00',
  ended_at: '2020-01-01T00:00:01+00:00',
  status_code: 200,
})

class FakeTerminal extends EventEmitter {
  isTTY = true
  columns = 100
  rows = 30
  writes: string[] = []
  write(text: string): boolean {
    this.writes.push(text)
    return true
  }
  get screen(): string {
    return this.writes.join('')
  }
}

class FakeKeyboard extends EventEmitter {
  isTTY = true
  setRawMode(): void {}
  setEncoding(): void {}
  resume(): void {}
  pause(): void {}
}

let keyboard: FakeKeyboard | undefined

afterEach(async () => {
  keyboard?.emit('data', 'q')
  keyboard = undefined
  await getSharedMemoryTracker().clear()
})

async function startView(): Promise<{ terminal: FakeTerminal; exited: Promise<number> }> {
  const terminal = new FakeTerminal()
  keyboard = new FakeKeyboard()
  const exited = runLive(
    {
      trackerUrl: 'memory://',
      keyPrefix: undefined,
      refreshRateSeconds: 30,
      activeColumns: parseColumnList(DEFAULT_ACTIVE_COLUMNS),
      completedColumns: parseColumnList(DEFAULT_COMPLETED_COLUMNS),
    },
    { stdout: terminal, stdin: keyboard },
  )
  await waitUntil(() => terminal.writes.length >= 2)
  return { terminal, exited }
}

describe('live refresh loop', () => {
  it('draws at most 10 frames a second under a burst of updates', async () => {
    const { terminal } = await startView()
    const before = terminal.writes.length
    const tracker = getSharedMemoryTracker()

    const started = Date.now()
    for (let i = 0; i < 200; i++) {
      tracker.recordEnd(`p${i}`, OLD_RECORD.replace('/old', `/burst/${i}`))
      if (i % 20 === 0) await sleep(50)
    }
    await sleep(1_000 - (Date.now() - started))

    const frames = terminal.writes.length - before
    expect(frames).toBeGreaterThanOrEqual(1)
    expect(frames).toBeLessThanOrEqual(11)
    expect(terminal.writes.at(-1)).toContain('Completed HTTP responses (200')
  })

  it('never writes the same frame twice', async () => {
    const tracker = getSharedMemoryTracker()
    const activeForYears = OLD_RECORD.replace(/"ended_at":"[^"]*"/, '"ended_at":null')
    tracker.recordStart('p-same', activeForYears)
    const { terminal } = await startView()
    await sleep(200)
    const before = terminal.writes.length

    // Five updates that change nothing on screen; only the clock in the
    // header may tick, once per second of wall time.
    const startedAt = Date.now()
    for (let i = 0; i < 5; i++) {
      tracker.recordStart('p-same', activeForYears)
      await sleep(150)
    }
    const clockTicks = Math.ceil((Date.now() - startedAt) / 1000)
    expect(terminal.writes.length - before).toBeLessThanOrEqual(clockTicks)
  })

  it('redraws at once on resize', async () => {
    const { terminal } = await startView()
    const before = terminal.writes.length
    terminal.columns = 60
    terminal.rows = 12
    terminal.emit('resize')

    expect(terminal.writes.length).toBe(before + 1)
    expect(terminal.writes.at(-1)).toContain('\x1b[2J')
  })

  it('exits with 0 on q and restores the terminal', async () => {
    const { terminal, exited } = await startView()
    keyboard?.emit('data', 'q')
    expect(await exited).toBe(0)
    expect(terminal.writes.at(-1)).toBe('\x1b[?2026l\x1b[0m\x1b[?7h\x1b[?25h\x1b[?1049l')
    expect(process.listenerCount('SIGTERM')).toBe(0)
  })
})

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
}

async function waitUntil(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the first frame')
    await sleep(10)
  }
}
