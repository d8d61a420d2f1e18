import express from 'express'
import { describe, expect, it } from 'vitest'
import { MemoryTracker, topMiddleware } from '../src/index'
import { sendRequest } from './helpers/http'

function taskJson(id: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ task_id: id, path: `/t/${id}`, ...extra })
}

describe('MemoryTracker', () => {
  it('keeps active tasks by processor', async () => {
    const tracker = new MemoryTracker()
    tracker.recordStart('p1', taskJson(1))
    tracker.recordStart('p2', taskJson(2))
    tracker.recordEnd('p2', taskJson(2, { status_code: 200 }))

    const snapshot = await tracker.read()
    expect([...snapshot.active.keys()]).toEqual(['p1'])
    expect(snapshot.active.get('p1')?.path).toBe('/t/1')
    expect(snapshot.completed).toHaveLength(1)
    expect(snapshot.completed[0]).toMatchObject({ task_id: 2, path: '/t/2', status_code: 200 })
  })

  it('caps completed tasks, newest first', async () => {
    const tracker = new MemoryTracker({ maxCompletedTasks: 10 })
    for (let i = 0; i < 100; i++) tracker.recordEnd(`p${i % 3}`, taskJson(i))

    const snapshot = await tracker.read()
    expect(snapshot.completed.map((task) => task.task_id)).toEqual(Array.from({ length: 10 }, (_, i) => 99 - i))
  })

  it('reads up to completedLimit', async () => {
    const tracker = new MemoryTracker({ maxCompletedTasks: 5 })
    for (let i = 0; i < 7; i++) tracker.recordEnd('p', taskJson(i))

    expect((await tracker.read({ completedLimit: 3 })).completed.map((task) => task.task_id)).toEqual([6, 5, 4])
    expect((await tracker.read({ completedLimit: 0 })).completed).toEqual([])
    expect((await tracker.read({ completedLimit: 50 })).completed).toHaveLength(5)
  })

  it('removes processors by prefix', async () => {
    const tracker = new MemoryTracker()
    for (const id of ['host/1-0-1.0', 'host/1-0-1.1', 'host/1-0-2.0', 'other']) tracker.recordStart(id, taskJson(1))

    expect(await tracker.removeProcessors('host/1-0-1.')).toBe(2)
    expect([...(await tracker.read()).active.keys()]).toEqual(['host/1-0-2.0', 'other'])
  })

  it('delivers updates after the writing turn', async () => {
    const tracker = new MemoryTracker()
    const received: string[] = []
    const unsubscribe = await tracker.subscribe((json) => received.push(json))

    tracker.recordStart('p1', taskJson(1))
    tracker.recordEnd('p1', taskJson(2))
    expect(received).toEqual([])

    await new Promise((resolve) => setImmediate(resolve))
    expect(received).toEqual([taskJson(1), taskJson(2)])

    await unsubscribe()
    tracker.recordStart('p3', taskJson(3))
    await new Promise((resolve) => setImmediate(resolve))
    expect(received).toHaveLength(2)
  })

  it('clear empties and stamps the time', async () => {
    const tracker = new MemoryTracker()
    tracker.recordStart('p1', taskJson(1))
    tracker.recordEnd('p2', taskJson(2))
    await tracker.clear()

    const snapshot = await tracker.read()
    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed).toEqual([])
    expect(snapshot.lastClearedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$/)
  })

  it('counts written records', () => {
    const tracker = new MemoryTracker()
    tracker.recordStart('p1', taskJson(1))
    tracker.recordEnd('p1', taskJson(1))
    expect(tracker.stats()).toEqual({ written: 2, dropped: 0, pendingBytes: 0 })
  })

  it.each([
    [0, RangeError, 'The `maxCompletedTasks` option must be a whole number of at least 1 (received 0)'],
    [-3, RangeError, 'The `maxCompletedTasks` option must be a whole number of at least 1 (received -3)'],
    ['5', TypeError, 'The `maxCompletedTasks` option must be a number (received "5")'],
  ])('rejects maxCompletedTasks %j', (value, errorClass, message) => {
    const create = () => new MemoryTracker({ maxCompletedTasks: value as number })
    expect(create).toThrow(errorClass)
    expect(create).toThrow(message)
  })
})

describe('MemoryTracker behind Express', () => {
  it('reads back what Express recorded', async () => {
    const tracker = new MemoryTracker({ maxCompletedTasks: 3 })
    const middleware = topMiddleware({ tracker })
    const app = express()
    app.use(middleware)
    app.get('/items/:id', (req, res) => {
      res.json({ id: req.params.id })
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`

    try {
      for (let i = 1; i <= 4; i++) await sendRequest(`${url}/items/${i}?page=${i}`)
      const snapshot = await tracker.read()

      expect(snapshot.active.size).toBe(0)
      expect(snapshot.completed.map((task) => task.path)).toEqual(['/items/4', '/items/3', '/items/2'])
      expect(snapshot.completed[0]?.task_name).toBe('/items/:id')
      expect(snapshot.completed[0]?.params).toEqual({ page: '4' })
      expect(snapshot.completed[0]?.status_code).toBe(200)
      expect(snapshot.completed[0]?.recorded_successfully).toBe(true)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await middleware.close()
    }
  })
})
