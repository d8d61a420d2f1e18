/**
 * An Express app whose Redis is unreachable still exits once its server
 * closes: the tracker stops reconnecting instead of keeping a timer alive.
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { findFreePort } from './helpers/redis-server'

const SCRIPT = resolve(__dirname, 'fixtures/express-without-redis.ts')

describe('process exit without Redis', () => {
  it('exits after server.close()', async () => {
    const redisPort = await findFreePort()
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, String(redisPort)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    const startedAt = Date.now()
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 20_000)

    const code = await new Promise<number | null>((resolveExit) => child.once('exit', resolveExit))
    clearTimeout(killTimer)

    expect(stdout).toContain('status 200')
    expect(code).toBe(0)
    expect(Date.now() - startedAt).toBeLessThan(15_000)
  })
})
