/**
 * Records written by this package carry every field of the reference record
 * of the Python Top Framework, with the same types, so its readers find
 * what they expect.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryTracker, topMiddleware } from '../src/index'

const SEED = JSON.parse(readFileSync(resolve(__dirname, 'fixtures/seed-task.json'), 'utf8')) as Record<string, unknown>

let tracker: MemoryTracker
let middleware: ReturnType<typeof topMiddleware>
let baseUrl: string
let close: () => Promise<void>

beforeAll(async () => {
  tracker = new MemoryTracker()
  middleware = topMiddleware({ tracker, handleSignals: false })
  const app = express()
  app.use(middleware)
  app.get('/api/candles', (_req, res) => {
    res.json({ ok: true })
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolveListen) => server.once('listening', resolveListen))
  const address = server.address()
  baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  close = () => new Promise((resolveClose) => server.close(() => resolveClose()))
})

afterAll(async () => {
  await middleware.close()
  await close()
})

describe('record fields', () => {
  it('include every field of the reference record', async () => {
    const response = await fetch(`${baseUrl}/api/candles?pair=ETH-USDC`, { headers: { 'user-agent': 'compat-test' } })
    expect(response.status).toBe(200)
    await tracker.flush()
    await new Promise((resolveTick) => setImmediate(resolveTick))

    const snapshot = await tracker.read()
    const record = snapshot.completed[0] as Record<string, unknown>
    expect(record).toBeDefined()

    for (const [field, value] of Object.entries(SEED)) {
      expect(record, `field ${field}`).toHaveProperty(field)
      // The protocol allows an integer or a string task id; this package writes strings.
      if (field === 'task_id') continue
      if (value !== null && record[field] !== null) {
        expect(Array.isArray(record[field]), `array-ness of ${field}`).toBe(Array.isArray(value))
        expect(typeof record[field], `type of ${field}`).toBe(typeof value)
      }
    }
  })
})
