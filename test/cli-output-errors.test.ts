/**
 * `web-top-cli` writing to a standard output that fails: /dev/full makes
 * every write fail with ENOSPC. Each command reports it on one line and
 * exits 1, without a stack trace.
 */
import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, cliEnvironment, runCli } from './helpers/cli'
import { completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const ENOSPC_LINE = 'web-top-cli: cannot write to standard output: no space left on device (ENOSPC)\n'

let redis: TestRedis
let fullDevice: number

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.lpush('past_tasks', JSON.stringify(completedRecord('/orders', 200, 12)))
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
