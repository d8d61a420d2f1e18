/**
 * The example apps, the traffic generator and the demo, run as a user runs
 * them: child processes on loopback ports, read back through the HTTP
 * tracker endpoint or a private Redis.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Agent, get as httpGet } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { isLoopbackHost, parseTargets } from '../examples/traffic-generator'
import { HttpTracker } from '../src/index'
import {
  countTasksByRoute,
  countTrafficByRoute,
  exampleEnvironment,
  ROOT,
  runTraffic,
  startExample,
  type ExampleProcess,
} from './helpers/example-process'
import { findFreePort, startRedis, waitUntil, type TestRedis } from './helpers/redis-server'

const API_KEY = randomBytes(24).toString('base64url')

const running: ExampleProcess[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((example) => example.stop()))
})

describe('traffic generator targets', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.10.20.30', true],
    ['localhost', true],
    ['[::1]', true],
    ['10.0.0.1', false],
    ['169.254.169.254', false],
    ['example.com', false],
    ['127.0.0.1.example.com', false],
    ['[::ffff:10.0.0.1]', false],
  ])('%s is loopback: %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected)
  })

  it('rejects remote hosts unless allowed', () => {
    expect(() => parseTargets(['http://192.168.1.5:3000'])).toThrow(
      'Target http://192.168.1.5:3000 is not a loopback address; pass --allow-remote to send traffic to it.',
    )
    expect(parseTargets(['http://192.168.1.5:3000'], true)[0]?.host).toBe('192.168.1.5:3000')
  })

  it('exits 2 on a remote --url', async () => {
    const traffic = startExample('traffic.ts', { trackerUrl: 'memory://', args: ['--url', 'http://10.1.2.3:3000'] })
    running.push(traffic)
    const code = await new Promise((resolve) => traffic.child.once('close', resolve))

    expect(code).toBe(2)
    expect(traffic.output()).toBe(
      'traffic: Target http://10.1.2.3:3000 is not a loopback address; pass --allow-remote to send traffic to it.\n',
    )
  })
})

describe.each([
  ['express.ts', 'express example'],
  ['fastify.ts', 'fastify example'],
])('examples/%s', (script, name) => {
  it('records traffic to its tracker endpoint', async () => {
    const port = await findFreePort()
    const app = startExample(script, {
      trackerUrl: 'memory://',
      args: ['--port', String(port)],
      env: { TOP_WEB_API_KEY: API_KEY, TOP_MAX_COMPLETED_TASKS: '500' },
    })
    running.push(app)
    const [banner] = await app.waitForLines(/listening/, 1)
    expect(banner).toBe(`${name}: process ${app.child.pid} listening on http://127.0.0.1:${port} (tracker memory://)`)

    const origin = `http://127.0.0.1:${port}`
    const health = await fetch(`${origin}/health`)
    const summary = await runTraffic(['--url', origin, '--requests', '60', '--concurrency', '6', '--slow-share', '0.1'])
    const reader = new HttpTracker({ url: `${origin}/web-top`, apiKey: API_KEY })
    await reader.read()
    const snapshot = await reader.read()

    expect(health.status).toBe(200)
    expect(summary.total).toBe(60)
    expect(summary.byStatus.error).toBeUndefined()
    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed).toHaveLength(60)
    expect(countTasksByRoute(snapshot.completed)).toEqual(countTrafficByRoute(summary))
    expect(await app.stop()).toBe(0)
  })
})

describe('demo', () => {
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(async () => {
    await redis?.close()
  })

  it('shows live frames from memory', async () => {
    const demo = startExample('demo.ts', { trackerUrl: 'memory://', args: ['--duration', '4'] })
    running.push(demo)
    const code = await new Promise((resolve) => demo.child.once('close', resolve))
    const output = demo.output()

    expect(code, output).toBe(0)
    expect(output).toMatch(/^demo: it records to memory and serves the tasks at http:\/\/127\.0\.0\.1:\d+\/web-top$/m)
    expect(output).toContain('demo: starting the live view; stop it with Ctrl-C')
    expect(output).toMatch(/^web-top {2}http:\/\/127\.0\.0\.1:\d+\/web-top {2}\d\d:\d\d:\d\d\nHosts \d+ {2}Processes \d+ {2}Active \d+ {2}Completed /m)
    expect(output).toMatch(/^Active HTTP requests \(\d+\)$/m)
    expect(output).toMatch(/ GET +\/slow /)
    expect(output).toMatch(/^demo: sent \d+ requests \(.*200: \d+.*\); app stopped$/m)
  }, 30_000)

  it('records to TOP_TRACKER_URL and cleans up', async () => {
    const demo = startExample('demo.ts', {
      trackerUrl: `${redis.url}/4`,
      args: ['--duration', '4'],
      env: { TOP_TRACKER_PREFIX: 'demo:' },
    })
    running.push(demo)
    const code = await new Promise((resolve) => demo.child.once('close', resolve))
    const output = demo.output()
    await redis.client.select(4)

    expect(code, output).toBe(0)
    expect(output).toContain(
      `demo: in a second terminal, in this folder, run: TOP_TRACKER_URL=${redis.url}/4 TOP_TRACKER_PREFIX=demo: npx web-top-cli live`,
    )
    expect(output).toMatch(new RegExp(`^web-top {2}redis://127\\.0\\.0\\.1:${redis.port}/4 `, 'm'))
    expect(output).toContain(`web-top records to ${redis.url}/4 (from TOP_TRACKER_URL)`)
    expect(await redis.client.llen('demo:past_tasks')).toBeGreaterThan(0)
    expect(await redis.client.hlen('demo:processors')).toBe(0)
  }, 30_000)

  // As `npm run demo | head -N`: the tsx command, under which an unhandled
  // EPIPE crashed the demo, and a real pipe whose reader closes. One line
  // ends before the live view writes, five lines end inside its first frame.
  it.each([1, 5])('ends quietly on a pipe closed after %i lines', async (lineCount) => {
    const demo = spawn(process.execPath, [require.resolve('tsx/cli'), 'examples/demo.ts', '--duration', '60'], {
      cwd: ROOT,
      env: exampleEnvironment({ TOP_TRACKER_URL: 'memory://' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own, to check that no process of the demo remains.
      detached: true,
    })
    const group = demo.pid as number
    let stdout = ''
    let stderr = ''
    demo.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      if (stdout.split('\n').length > lineCount) demo.stdout.destroy()
    })
    demo.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const exited = new Promise<number | null>((resolve) => demo.once('exit', resolve))
    // Far below --duration, so that only the closed pipe can have ended the demo.
    const deadline = setTimeout(() => killGroup(group), 20_000)

    try {
      const code = await exited
      await waitUntil('the demo process group to be empty', 15_000, async () => !groupExists(group))

      expect(code, stderr).toBe(0)
      expect(stderr).not.toContain('EPIPE')
      expect(stderr).not.toMatch(/^\s+at /m)
      expect(stdout).toMatch(/^demo: Express example app on http:\/\/127\.0\.0\.1:\d+/m)
    } finally {
      clearTimeout(deadline)
      killGroup(group)
    }
  }, 45_000)
})

/** Returns whether any process of the process group `group` is still alive, zombies included. */
function groupExists(group: number): boolean {
  try {
    process.kill(-group, 0)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw error
  }
}

/** Kills what is left of the process group `group`, which the test started. */
function killGroup(group: number): void {
  if (groupExists(group)) process.kill(-group, 'SIGKILL')
}

describe('example shutdown', () => {
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(async () => {
    await redis?.close()
  })

  // Clients that keep sending on keep-alive connections keep server.close() waiting.
  it('ends its tasks with clients still sending', async () => {
    const port = await findFreePort()
    const app = startExample('express.ts', { trackerUrl: redis.url, args: ['--port', String(port)] })
    running.push(app)
    await app.waitForLines(/listening on/, 1)

    const agent = new Agent({ keepAlive: true, maxSockets: 4 })
    let refused = false
    let sent = 0
    const sendUntilRefused = async () => {
      // Bounded: the server refuses connections once it has closed.
      while (!refused && sent < 20_000) {
        sent++
        try {
          await sendKeepAlive(agent, port, sent % 10 === 0 ? '/slow' : '/')
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED') refused = true
        }
      }
    }
    const clients = Array.from({ length: 4 }, sendUntilRefused)
    await waitUntil('the first records', 15_000, async () => (await redis.client.llen('past_tasks')) >= 20)

    const code = await app.stop(30_000)
    refused = true
    await Promise.all(clients)
    agent.destroy()

    expect(code, app.output()).toBe(0)
    expect(app.output()).toMatch(/^express example: process \d+ stopped$/m)
    expect(await redis.client.hlen('processors')).toBe(0)
    expect(await redis.client.smembers('heartbeats')).toEqual([])
  }, 60_000)
})

/** Sends GET `path` on a keep-alive connection of `agent` and resolves when the body has arrived. */
function sendKeepAlive(agent: Agent, port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = httpGet({ host: '127.0.0.1', port, path, agent }, (response) => {
      response.resume()
      response.once('end', resolve)
      response.once('error', reject)
    })
    request.once('error', reject)
  })
}
