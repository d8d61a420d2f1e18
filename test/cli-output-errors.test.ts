/**
 * `web-top-cli` writing to a standard output that fails: /dev/full makes
 * every write fail with ENOSPC. Each command reports it on one line and
 * exits 1, without a stack trace. A pipe whose reader has gone (EPIPE), on
 * standard output or standard error, leaves the exit code as the command
 * decides it.
 */
import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, cliEnvironment, runCli } from './helpers/cli'
import { activeRecord, completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const ENOSPC_LINE = 'web-top-cli: cannot write to standard output: no space left on device (ENOSPC)\n'

/** Key prefix whose only task is an active request that counts as stalled. */
const STALLED_PREFIX = 'stalled:'

let redis: TestRedis
let fullDevice: number

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.lpush('past_tasks', JSON.stringify(completedRecord('/orders', 200, 12)))
  // Started in 2026-12-04, so it has run longer than any --stall-after.
  await redis.client.hset(`${STALLED_PREFIX}processors`, 'stalled-1', JSON.stringify(activeRecord('stalled-1', '/slow')))
  fullDevice = openSync('/dev/full', 'w')
})

afterAll(async () => {
  if (fullDevice !== undefined) closeSync(fullDevice)
  await redis?.close()
})

describe('standard output on a full device', () => {
  const commands = [
    ['version'],
    ['--version'],
    ['recent', '--help'],
    ['recent'],
    ['recent', '--json'],
    ['recent', '--ndjson'],
    ['recent', '--all-prefixes'],
    ['prefixes'],
    ['check'],
    ['prune'],
  ]
  for (const args of commands) {
    it(`${args.join(' ')} reports ENOSPC`, async () => {
      const result = await runCli([...args], { stdoutFd: fullDevice, env: { TOP_TRACKER_URL: redis.url } })

      expect(result.stderr).toBe(ENOSPC_LINE)
      expect(result.code).toBe(1)
    })
  }

  it('tail reports ENOSPC on its first line', async () => {
    const running = runCli(['tail', '--tracker-url', redis.url], { stdoutFd: fullDevice })
    let exited = false
    void running.then(() => (exited = true))

    // tail prints only what ends after it subscribes, so publish until it has printed one.
    for (let attempt = 0; attempt < 100 && !exited; attempt++) {
      await redis.client.publish('task_updates', JSON.stringify(completedRecord('/tail', 200, 5)))
      await new Promise((resolveWait) => setTimeout(resolveWait, 100))
    }
    const result = await running

    expect(result.stderr).toBe(ENOSPC_LINE)
    expect(result.code).toBe(1)
  })
})

describe('closed standard output', () => {
  // Node opens /dev/null in place of a closed standard stream before the
  // CLI starts, so `>&-` cannot be distinguished from `> /dev/null`.
  it('version with >&- exits 0 as with /dev/null', async () => {
    const child = spawn('/bin/sh', ['-c', 'exec "$0" "$1" version >&-', process.execPath, CLI_PATH], {
      env: cliEnvironment(),
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const code = await new Promise<number | null>((resolveExit) => child.once('close', resolveExit))

    expect(stderr).toBe('')
    expect(code).toBe(0)
  })
})

/** Runs the CLI with its standard output or standard error a pipe whose reading end is closed at once. */
async function runWithClosedPipes(
  args: readonly string[],
  closed: { stdout: boolean; stderr: boolean },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: cliEnvironment(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // Closed before Node has started the CLI, so its first write fails with EPIPE.
  if (closed.stdout) child.stdout.destroy()
  if (closed.stderr) child.stderr.destroy()
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  const code = await new Promise<number | null>((resolveExit) => child.once('close', resolveExit))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

describe('closed pipes', () => {
  const failingCheck = () => ['check', '--tracker-url', redis.url, '--prefix', STALLED_PREFIX, '--max-stalled', '0']

  it('check keeps its failure code when stdout closes', async () => {
    const result = await runWithClosedPipes(failingCheck(), { stdout: true, stderr: false })

    expect(result.stderr).toBe('')
    expect(result.code).toBe(1)
  })

  it('check keeps its failure code when both close', async () => {
    const result = await runWithClosedPipes(failingCheck(), { stdout: true, stderr: true })

    expect(result.code).toBe(1)
  })

  it('check passes when stderr closes before its note', async () => {
    // No key under this prefix: check passes and notes that on standard error.
    const args = ['check', '--tracker-url', redis.url, '--prefix', 'no-app-here:', '--max-stalled', '0']
    const result = await runWithClosedPipes(args, { stdout: false, stderr: true })

    expect(result.stdout).toMatch(/^OK: /)
    expect(result.code).toBe(0)
  })

  it('usage error keeps code 2 when stderr closes', async () => {
    const result = await runWithClosedPipes(['check', '--tracker-url', redis.url, '--no-such-option'], {
      stdout: false,
      stderr: true,
    })

    expect(result.code).toBe(2)
  })

  it('help names the closed-pipe exit codes', async () => {
    const result = await runCli(['--help'])

    expect(result.stdout.replace(/\s+/g, ' ')).toContain(
      'A reader that closes standard output early (| head) ends live and tail with 0; ' +
        'the other commands keep their own exit code.',
    )
    expect(result.code).toBe(0)
  })

  it('recent exits 0 when stdout closes', async () => {
    const result = await runWithClosedPipes(['recent', '--tracker-url', redis.url], { stdout: true, stderr: false })

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
  })
})
