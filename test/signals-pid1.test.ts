/**
 * handleSignals in a process that runs as PID 1, as the app does in a
 * container without an init process. The kernel ignores a signal without
 * a handler there, so the recorder must end the process itself.
 */
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers/http'

/** Whether this machine lets an unprivileged process start a PID namespace. */
const canUnshare = spawnSync('unshare', ['--pid', '--fork', '--map-root-user', 'true']).status === 0

const APP = `
  const express = require('express')
  const { topMiddleware } = require('./src/index.ts')
  const app = express()
  app.use(topMiddleware({ trackerUrl: 'memory://' }))
  app.get('/', (req, res) => res.send('ok'))
  app.listen(0, '127.0.0.1', () => console.log('pid ' + process.pid))
`

describe.skipIf(!canUnshare)('handleSignals as PID 1', () => {
  it('ends the process on SIGTERM', async () => {
    const child = spawn(
      'unshare',
      ['--pid', '--fork', '--kill-child', '--map-root-user', process.execPath, '--import', 'tsx', '-e', APP],
      { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    try {
      await waitFor('the app', () => (stdout.includes('pid ') ? true : undefined), 15_000)
      expect(stdout).toContain('pid 1\n')
      // unshare forks the app; its only child is the app, PID 1 inside.
      const appPid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim())
      process.kill(appPid, 'SIGTERM')

      const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 5_000))])
      expect(code).toBe(143)
    } finally {
      child.kill('SIGKILL')
    }
  }, 30_000)
})
