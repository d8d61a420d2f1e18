import { describe, expect, it } from 'vitest'
import { deriveProcessorId, LiveState } from '../src/cli/live-state'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import type { TaskSnapshot } from '../src/trackers/tracker'

const NOW = Date.parse('2026-12-04T15:00:00Z')

function start(id: string, startedAgoMs = 1_000): HttpTask {
  return {
    task_id: id,
    host_name: 'web-1',
    process_id: 7,
    thread_id: 0,
    process_internal_id: `1.${id}`,
    started_at: formatIsoTime(NOW - startedAgoMs),
    ended_at: null,
    path: `/${id}`,
  }
}

function end(id: string, endedAgoMs = 0, status = 200): HttpTask {
  return { ...start(id), ended_at: formatIsoTime(NOW - endedAgoMs), status_code: status }
}

function snapshot(active: HttpTask[], completed: HttpTask[], lastClearedAt: string | null = null): TaskSnapshot {
  return {
    active: new Map(active.map((task) => [deriveProcessorId(task) as string, task])),
    completed,
    skipped: 0,
    skipReasons: [],
    lastClearedAt,
  }
}

function createState(): LiveState {
  return new LiveState({ windowMs: 60_000, completedLimit: 5, nowMs: NOW })
}

describe('LiveState', () => {
  it('applies start and end updates without a read', () => {
    const state = createState()
    state.finishResync(snapshot([], []), NOW)
    state.applyUpdate(JSON.stringify(start('a')), NOW)
    expect([...state.active.values()].map((entry) => entry.task.path)).toEqual(['/a'])
    expect(state.active.get('id:a@web-1/7/0')?.processorId).toBe('web-1/7-0-1.a')

    state.applyUpdate(JSON.stringify(end('a')), NOW)
    expect(state.active.size).toBe(0)
    expect(state.completed.map((task) => task.path)).toEqual(['/a'])
    expect(state.stats.figures(NOW).count).toBe(1)
    expect(state.updatesApplied).toBe(2)
  })

  it('keeps equal task ids of two processes apart', () => {
    const state = createState()
    const first: HttpTask = { ...start('3'), task_id: 3, process_id: 100, path: '/from-100' }
    const second: HttpTask = { ...start('3'), task_id: 3, process_id: 200, path: '/from-200' }
    state.finishResync(snapshot([first, second], []), NOW)
    expect(state.active.size).toBe(2)

    state.applyUpdate(JSON.stringify({ ...first, ended_at: formatIsoTime(NOW), status_code: 200 }), NOW)
    expect([...state.active.values()].map((entry) => entry.task.path)).toEqual(['/from-200'])
    expect(state.completed.map((task) => task.path)).toEqual(['/from-100'])
  })

  it('forgets completed tasks and their figures after a clear', () => {
    const state = createState()
    state.finishResync(snapshot([], [end('a', 2_000), end('b', 1_000, 500)]), NOW)
    expect(state.stats.figures(NOW).count).toBe(2)

    state.finishResync(snapshot([], [], formatIsoTime(NOW)), NOW + 1_000)
    expect(state.completed).toEqual([])
    const figures = state.stats.figures(NOW + 1_000)
    expect(figures.count).toBe(0)
    // The figures count from the clear, 1 s before the read.
    expect(figures.coveredMs).toBe(1_000)
    expect(state.stats.hosts(NOW + 1_000)).toEqual([])
  })

  it('keeps the updates that ended after a clear', () => {
    const state = createState()
    state.finishResync(snapshot([], [end('a', 3_000)]), NOW)
    // The clear comes 2 s before now, and `b` ends after it: the stream brings it before the read finds the clear.
    state.applyUpdate(JSON.stringify(end('b', 1_000)), NOW)

    state.finishResync(snapshot([], [], formatIsoTime(NOW - 2_000)), NOW)
    expect(state.completed.map((task) => task.path)).toEqual(['/b'])
    expect(state.stats.figures(NOW).count).toBe(1)
    expect(state.stats.figures(NOW).coveredMs).toBe(2_000)
  })

  it('ends a task whose end names another thread', () => {
    const state = createState()
    const first: HttpTask = { ...start('7'), task_id: 7, thread_id: 11, path: '/first' }
    const other: HttpTask = { ...start('7'), task_id: 7, thread_id: 12, path: '/other' }
    state.finishResync(snapshot([first], []), NOW)

    state.applyUpdate(JSON.stringify({ ...first, thread_id: 99, ended_at: formatIsoTime(NOW), status_code: 200 }), NOW)
    expect(state.active.size).toBe(0)

    // With two entries of that task id, the end names no single one, and both stay until a read.
    state.finishResync(snapshot([first, other], []), NOW)
    state.applyUpdate(JSON.stringify({ ...first, thread_id: null, ended_at: formatIsoTime(NOW), status_code: 200 }), NOW)
    expect(state.active.size).toBe(2)
  })

  it('counts an undecodable update and goes on', () => {
    const state = createState()
    expect(state.applyUpdate('{not json', NOW)).toBe(false)
    expect(state.skippedUpdates).toBe(1)
  })

  it('keeps each skip reason of updates once', () => {
    const state = createState()
    state.applyUpdate('{not json', NOW)
    state.applyUpdate('{still not json', NOW)
    state.applyUpdate('[]', NOW)

    expect(state.skippedUpdates).toBe(3)
    expect(state.updateSkipReasons).toEqual(['invalid JSON', 'not a JSON object'])
  })

  it('replays the updates that arrived during a read', () => {
    const state = createState()
    state.finishResync(snapshot([], []), NOW)
    state.beginResync()
    // The read saw `a` active, but `a` ended and `b` started while it was in flight.
    state.applyUpdate(JSON.stringify(end('a')), NOW)
    state.applyUpdate(JSON.stringify(start('b')), NOW)
    state.finishResync(snapshot([start('a')], []), NOW)

    expect([...state.active.values()].map((entry) => entry.task.path)).toEqual(['/b'])
    expect(state.stats.figures(NOW).count).toBe(1)
  })

  it('reads back completed tasks the stream missed, once', () => {
    const state = createState()
    state.finishResync(snapshot([], [end('old', 9_000)]), NOW)
    state.applyUpdate(JSON.stringify(end('seen', 3_000)), NOW)
    const read = [end('missed', 1_000), end('seen', 3_000), end('old', 9_000)]
    const result = state.finishResync(snapshot([], read), NOW, NOW - 5_000)

    expect(result.recovered).toBe(1)
    expect(result.missing).toBeUndefined()
    expect(state.stats.figures(NOW).count).toBe(3)
    expect(state.completed.map((task) => task.path)).toEqual(['/missed', '/seen', '/old'])
  })

  it('drops completed tasks a polled read no longer returns', () => {
    const state = createState()
    state.finishResync(snapshot([], [end('a', 2_000), end('b', 3_000)]), NOW, undefined, true)
    // The app restarted on memory:// and kept only its new request.
    state.finishResync(snapshot([], [end('c', 500)]), NOW, NOW - 2_000, true)

    expect(state.completed.map((task) => task.path)).toEqual(['/c'])
  })

  it('keeps completed tasks a read leaves out while the stream is connected', () => {
    const state = createState()
    state.finishResync(snapshot([], [end('a', 2_000), end('b', 3_000)]), NOW)
    state.finishResync(snapshot([], [end('c', 500)]), NOW)

    expect(state.completed.map((task) => task.path)).toEqual(['/c', '/a', '/b'])
  })

  it('reports a gap that past_tasks does not reach back to', () => {
    const state = createState()
    state.finishResync(snapshot([], []), NOW)
    const result = state.finishResync(snapshot([], [end('x', 1_000)]), NOW, NOW - 10_000)
    expect(result.missing).toEqual({ fromMs: NOW - 10_000, toMs: NOW - 1_000 })
    expect(state.stats.figures(NOW).coveredMs).toBeLessThan(60_000)
  })

  it('keeps the completed list newest first and within its limit', () => {
    const state = createState()
    state.finishResync(snapshot([], []), NOW)
    for (let i = 0; i < 8; i++) state.applyUpdate(JSON.stringify(end(`t${i}`, 8_000 - i * 1_000)), NOW)
    expect(state.completed.map((task) => task.path)).toEqual(['/t7', '/t6', '/t5', '/t4', '/t3'])
  })

  it('starts full coverage at the oldest task of the first read', () => {
    const state = createState()
    state.finishResync(snapshot([], [end('a', 20_000)]), NOW)
    expect(state.stats.figures(NOW).coveredMs).toBe(20_000)
  })

  it('marks tasks of a stopped recorder as orphaned', () => {
    const state = createState()
    state.finishResync(snapshot([start('a')], []), NOW)
    state.heartbeats = { live: [], stalePrefixes: ['web-1/7-0-1.'] }
    const [entry] = state.active.values()
    expect(entry).toBeDefined()
    expect(state.isOrphaned(entry as NonNullable<typeof entry>)).toBe(true)
  })
  it('finds the newest record of a task by its key', () => {
    const state = createState()
    state.finishResync(snapshot([start('a')], [end('b', 5_000), end('b', 1_000)]), NOW)
    const running: HttpTask = { ...start('a'), tags: { stage: 'two' } }
    state.applyUpdate(JSON.stringify(running), NOW)
    expect(state.findLatestTask('id:a@web-1/7/0')?.tags).toEqual({ stage: 'two' })
    expect(state.findLatestTask('id:b@web-1/7/0')?.ended_at).toBe(formatIsoTime(NOW - 1_000))

    state.applyUpdate(JSON.stringify(end('a')), NOW)
    expect(state.findLatestTask('id:a@web-1/7/0')?.ended_at).toBe(formatIsoTime(NOW))
    expect(state.findLatestTask('id:missing@web-1/7/0')).toBeUndefined()
  })
})
