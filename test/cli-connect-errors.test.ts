/**
 * A tracker URL that is invalid or points at no server: one line on
 * standard error naming the URL (password masked), exit code 1, no stack.
 */
import { describe, expect, it } from 'vitest'
import { runCli } from './helpers/cli'
import { findFreePort } from './helpers/redis-server'

/** Lines of a Node stack trace. */
const STACK_LINE = /^\s+at /m

function expectOneLineError(result: { code: number | null; stdout: string; stderr: string }): void {
  expect(result.code).toBe(1)
  expect(result.stdout).toBe('')
  expect(result.stderr.endsWith('\n')).toBe(true)
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
  expect(result.stderr).not.toMatch(STACK_LINE)
}

describe('tracker URL errors', () => {
  it('reports an unreachable Redis', async () => {
    const port = await findFreePort()
    const url = `redis://127.0.0.1:${port}`
    for (const command of ['recent', 'live']) {
      const started = Date.now()
      const result = await runCli([command, '--tracker-url', url])
      expectOneLineError(result)
      expect(result.stderr).toContain(`web-top-cli: Cannot connect to the tracker at ${url}: connect ECONNREFUSED`)
      expect(result.stderr).toContain('Check that Redis is running there')
      expect(Date.now() - started).toBeLessThan(5_000)
    }
  })

  it('masks the password of an unreachable Redis', async () => {
    const port = await findFreePort()
    const result = await runCli(['recent', '--tracker-url', `redis://:secret@127.0.0.1:${port}`])
    expectOneLineError(result)
    expect(result.stderr).toContain(`redis://:***@127.0.0.1:${port}`)
    expect(result.stderr).not.toContain('secret')
  })

  it('masks the password from the environment', async () => {
    const port = await findFreePort()
    const result = await runCli(
      ['recent'],
      { env: { TOP_TRACKER_URL: `redis://user:hunter2@127.0.0.1:${port}/3` } },
    )
    expectOneLineError(result)
    expect(result.stderr).toContain(`redis://user:***@127.0.0.1:${port}/3`)
    expect(result.stderr).not.toContain('hunter2')
  })

  it('rejects an unsupported scheme', async () => {
    const result = await runCli(['recent', '--tracker-url', 'ftp://x'])
    expectOneLineError(result)
    expect(result.stderr).toContain('web-top-cli: Invalid tracker URL "ftp://x/"')
    expect(result.stderr).toContain('the scheme "ftp:" is not supported')
  })

  it('rejects invalid URL syntax', async () => {
    for (const url of ['redis://[bad', 'redis://127.0.0.1:notaport', 'not a url']) {
      const result = await runCli(['recent', '--tracker-url', url])
      expectOneLineError(result)
      expect(result.stderr).toContain('Invalid tracker URL')
    }
  })

  it('masks the password of an invalid URL', async () => {
    const result = await runCli(['live', '--tracker-url', 'redis://:topsecret@[bad'])
    expectOneLineError(result)
    expect(result.stderr).not.toContain('topsecret')
  })
})
