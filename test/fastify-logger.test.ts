/**
 * The Fastify plugin logs through a child of the app's logger, bound to
 * `plugin: 'web-top'`, so that the app's log shows which lines are
 * web-top's. The lines are read as JSON from a real pino destination.
 */
import { Writable } from 'node:stream'
import fastify5 from 'fastify'
import fastify4 from 'fastify4'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisTracker, topPlugin, topTrackerRoute } from '../src/index'
import { waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

const FASTIFY_VERSIONS = [
  ['fastify5', fastify5],
  ['fastify4', fastify4 as unknown as typeof fastify5],
] as const

/** Creates a pino destination that keeps each JSON line written to it. */
function captureStream(): Writable & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      }
      callback()
    },
  })
  return Object.assign(stream, { lines })
}

function isWebTopLine(line: Record<string, unknown>): boolean {
  return String(line.msg).includes('web-top') || String(line.msg).includes('unknown option')
}

describe.each(FASTIFY_VERSIONS)('%s plugin log lines', (_name, fastify) => {
  it('go through a child logger', async () => {
    const stream = captureStream()
    const app = fastify({ logger: { level: 'info', stream } })
    // The misspelled option makes the recorder log a warning at start.
    await app.register(topPlugin, { trackerUrl: redis.url, handleSignals: false, keyPrefx: 'x:' } as never)
    await app.ready()
    await app.close()

    const destination = await waitFor('the destination line', () =>
      stream.lines.find((line) => String(line.msg).startsWith('web-top records to')),
    )
    expect(destination.plugin).toBe('web-top')
    expect(destination.level).toBe(30)
    const warning = stream.lines.find((line) => String(line.msg).startsWith('unknown option `keyPrefx`'))
    expect(warning?.plugin).toBe('web-top')
    expect(warning?.level).toBe(40)
    const unbound = stream.lines.filter((line) => isWebTopLine(line) && line.plugin !== 'web-top')
    expect(unbound).toEqual([])
  })

  it('skip the app logger for the logger option', async () => {
    const stream = captureStream()
    const logger = { ...captureLogger(), info: () => {} }
    const app = fastify({ logger: { level: 'info', stream } })
    await app.register(topPlugin, { trackerUrl: redis.url, handleSignals: false, logger, keyPrefx: 'x:' } as never)
    await app.ready()
    await app.close()

    expect(logger.lines.map((line) => line.message)).toContain(
      'unknown option `keyPrefx` ignored: did you mean `keyPrefix`?',
    )
    expect(stream.lines.filter(isWebTopLine)).toEqual([])
  })

  it('leave the app logger unbound', async () => {
    const stream = captureStream()
    const app = fastify({ logger: { level: 'info', stream } })
    await app.register(topPlugin, { trackerUrl: 'memory://', handleSignals: false })
    await app.ready()
    app.log.info('from the app')
    await app.close()

    const line = stream.lines.find((entry) => entry.msg === 'from the app')
    expect(line).toBeDefined()
    expect(line).not.toHaveProperty('plugin')
  })
})

describe.each(FASTIFY_VERSIONS)('%s tracker route log lines', (_name, fastify) => {
  it('go through a child logger', async () => {
    const stream = captureStream()
    const app = fastify({ logger: { level: 'info', stream } })
    // A closed tracker fails every read, which the route logs as an error.
    const tracker = new RedisTracker({ url: redis.url })
    await tracker.close()
    const apiKey = 'k'.repeat(32)
    await app.register(topTrackerRoute, { apiKey, tracker })
    try {
      const response = await app.inject({ url: '/web-top?action=active-tasks', headers: { 'x-api-key': apiKey } })
      expect(response.statusCode).toBe(503)
      const line = await waitFor('the read failure line', () =>
        stream.lines.find((entry) => entry.msg === 'web-top tracker endpoint failed to read the tracker'),
      )
      expect(line.plugin).toBe('web-top')
    } finally {
      await app.close()
    }
  })
})

