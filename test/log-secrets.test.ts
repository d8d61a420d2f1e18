/**
 * Secrets in the log lines that web-top writes through a pino logger, as
 * Fastify's own logger is. pino prints every enumerable field of an error,
 * and ioredis puts the command that failed, with its arguments, on each
 * error reply, so a wrong password in the tracker URL must not show there.
 */
import { Writable } from 'node:stream'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTrackerFromUrl, RedisTracker } from '../src/index'
import { runCli } from './helpers/cli'
import { waitFor } from './helpers/http'
import { startRedis, type TestRedis } from './helpers/redis-server'

const WRONG_PASSWORD = 'wrong-Pa55word-in-url'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis(['--requirepass', 'the-right-password'])
})

afterAll(async () => {
  await redis?.close()
})

/** Creates a pino logger that keeps every line it writes. */
function createPinoLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''))
      done()
    },
  })
  return { logger: pino({ level: 'debug' }, destination), lines }
}

describe('log secrets', () => {
  it('hides a wrong password from pino', async () => {
    const { logger, lines } = createPinoLogger()
    const tracker = new RedisTracker({ url: `redis://default:${WRONG_PASSWORD}@127.0.0.1:${redis.port}`, logger })
    try {
      const line = await waitFor('the authentication failure', () =>
        lines.find((each) => each.includes('authentication failed')),
      )
      const entry = JSON.parse(line) as { err?: { command?: { name?: string; args?: unknown[] } } }
      expect(entry.err?.command?.name).toBe('auth')
      expect(entry.err?.command?.args).toEqual(['***', '***'])
      expect(lines.join('\n')).not.toContain(WRONG_PASSWORD)
    } finally {
      await tracker.close()
    }
  })

  it('hides a password with @ and , from pino', async () => {
    const { logger, lines } = createPinoLogger()
    const url = `redis://default:Wr0ng@pa55,w0rd@127.0.0.1:${redis.port}`
    const tracker = new RedisTracker({ url, logger })
    try {
      await waitFor('the authentication failure', () => lines.find((each) => each.includes('authentication failed')))
      const text = lines.join('\n')
      expect(text).toContain(`redis://default:***@127.0.0.1:${redis.port}`)
      expect(text).not.toMatch(/Wr0ng|pa55|w0rd/)
    } finally {
      await tracker.close()
    }
  })

  it('hides a cluster password from pino', async () => {
    // The server is no cluster node, so every AUTH fails and ioredis reports the last node's error.
    const { logger, lines } = createPinoLogger()
    const tracker = createTrackerFromUrl(`redis+cluster://usr:${WRONG_PASSWORD}@127.0.0.1:${redis.port}`, { logger, keyPrefix: '{s}:' })
    try {
      const line = await waitFor('the cluster connection error', () =>
        lines.find((each) => each.includes('lastNodeError')),
      )
      const entry = JSON.parse(line) as { err?: { lastNodeError?: { command?: { name?: string; args?: unknown[] } } } }
      expect(entry.err?.lastNodeError?.command?.name).toBe('auth')
      expect(entry.err?.lastNodeError?.command?.args).toEqual(['***', '***'])
      expect(lines.join('\n')).not.toContain(WRONG_PASSWORD)
    } finally {
      await tracker.close()
    }
  })

  it('hides a password with @ and , from the CLI', async () => {
    const url = `redis://default:Wr0ng@pa55,w0rd@127.0.0.1:${redis.port}`
    const result = await runCli(['recent', '--tracker-url', url], { timeoutMs: 15_000 })

    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain(`redis://default:***@127.0.0.1:${redis.port}`)
    expect(result.stderr).not.toMatch(/Wr0ng|pa55|w0rd/)
  })
})

describe('cluster URL secrets in the CLI', () => {
  it('hides the password of every seed node', async () => {
    // The URL is rejected before the CLI connects, and nothing listens on ports 1 and 2.
    const url = 'redis+cluster://u:S5-first@127.0.0.1:1,u:S6-second@127.0.0.1:2'
    const result = await runCli(['recent', '--tracker-url', url, '--prefix', '{x}:'], { timeoutMs: 15_000 })

    expect(result.code).toBe(2)
    expect(result.stderr).toContain('Invalid tracker URL "redis+cluster://u:***@127.0.0.1:1,u:***@127.0.0.1:2"')
    expect(result.stderr).toContain('the host list entry "u:***@127.0.0.1:2" has a user part')
    expect(result.stderr).not.toMatch(/S5-first|S6-second/)
  })
})
