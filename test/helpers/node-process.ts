/**
 * Runs a short Node script as a child process in the repository folder, to
 * check that a process exits by itself.
 */
import { spawn } from 'node:child_process'

/**
 * A script for `node --import tsx -e` in the repository folder: an Express
 * app with `topMiddleware` recording into `TEST_REDIS_URL` sends itself one
 * request, closes its server and the middleware, and prints `closed`.
 */
export const ONE_REQUEST_EXPRESS_SCRIPT = `
  const express = require('express')
  const { topMiddleware } = require('./src/index.ts')
  const middleware = topMiddleware({ trackerUrl: process.env.TEST_REDIS_URL })
  const app = express()
  app.use(middleware)
  app.get('/', (req, res) => res.send('ok'))
  const server = app.listen(0, '127.0.0.1', async () => {
    await fetch('http://127.0.0.1:' + server.address().port + '/')
    server.close()
    await middleware.close()
    console.log('closed')
  })
`

export interface NodeResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs Node in the repository folder and fails if it has not exited after `timeoutMs`. */
export function runNode(args: string[], env: Record<string, string>, timeoutMs: number): Promise<NodeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: process.cwd(),
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))

    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node did not exit within ${timeoutMs} ms: ${stderr}`))
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
