/**
 * The built CLI stopped by a signal while a read of an http:// tracker is in
 * flight, against a server on 127.0.0.1 that keeps its replies back.
 */
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { CLI_PATH, cliEnvironment } from './helpers/cli'

const API_KEY = randomBytes(24).toString('base64url')

let server: Server
let endpointUrl = ''
/** Replies to completed-tasks sent before the server starts holding them. */
let repliesLeft = 0
let heldRequests = 0
const heldResponses: ServerResponse[] = []

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.searchParams.get('action') === 'completed-tasks' && repliesLeft-- <= 0) {
      heldRequests++
      heldResponses.push(res)
      return
    }
    const body = url.searchParams.get('action') === 'completed-tasks' ? '[]' : '{}'
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  endpointUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/web-top`
})

beforeEach(() => {
  for (const response of heldResponses.splice(0)) response.destroy()
  heldRequests = 0
})

afterAll(async () => {
  for (const response of heldResponses.splice(0)) response.destroy()
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

/**
 * Starts the CLI, sends `signal` once a read is held, and resolves with the
 * exit code as a shell reports it: 128 + the signal number when the signal
 * killed the process. SIGKILL after 5 s counts as 137.
 */
async function interruptDuringRead(args: readonly string[], signal: 'SIGINT' | 'SIGTERM') {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: cliEnvironment({ TOP_WEB_API_KEY: API_KEY }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdout.resume()
  const exited = new Promise<number>((resolve) => {
    child.once('close', (code, killedBy) => resolve(code ?? 128 + os.constants.signals[killedBy ?? 'SIGKILL']))
  })
  try {
    await waitForHeldRequest()
  } finally {
    child.kill(signal)
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  const code = await exited
  clearTimeout(timer)
  return { code, stderr }
}

async function waitForHeldRequest(): Promise<void> {
  const deadline = Date.now() + 10_000
  while (heldRequests === 0) {
    if (Date.now() > deadline) throw new Error('no read of completed-tasks reached the server within 10 s')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe.each([
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const)('%s during a read of an http:// tracker', (signal, exitCode) => {
  it.each([
    ['tail at its first read', ['tail'], 0],
    ['tail at a poll', ['tail', '--refresh-rate', '0.1'], 1],
    ['live at its first read', ['live'], 0],
    ['live at a resync', ['live', '--refresh-rate', '0.1'], 1],
    ['check', ['check'], 0],
  ] as const)('%s exits quietly', async (_name, args, replies) => {
    repliesLeft = replies
    const { code, stderr } = await interruptDuringRead([...args, '--tracker-url', endpointUrl], signal)

    expect(stderr).toBe('')
    expect(code).toBe(exitCode)
  })
})
