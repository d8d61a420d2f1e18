/**
 * The node:http adapter on real `http.createServer` servers on 127.0.0.1,
 * recording to a private Redis.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createRequestTracker, withTop, type RequestTracker, type TopRequestListener } from '../src/index'
import { sendRequest, waitFor } from './helpers/http'
import { runNode } from './helpers/node-process'
import { waitForCompleted } from './helpers/recording-cases'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis
const servers: Server[] = []
const recorders: Array<RequestTracker | TopRequestListener> = []

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

beforeEach(async () => {
  await redis.client.flushall()
})

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
  await Promise.all(recorders.splice(0).map((recorder) => recorder.close()))
})

/** Starts a server on 127.0.0.1 with an OS-chosen port and returns its base URL. */
async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('withTop', () => {
  it('records a request and its response', async () => {
    const listener = withTop(
      async (_req, res) => {
        await new Promise((resolve) => setTimeout(resolve, 5))
        res.writeHead(201, { 'Content-Type': 'application/json', 'X-Custom': 'yes' })
        res.end('{"created":true}')
      },
      { trackerUrl: redis.url, tags: { 'service.name': 'plain' } },
    )
    recorders.push(listener)
    const url = await listen(listener)

    const response = await sendRequest(`${url}/things/7?color=red`, {
      method: 'POST',
      headers: [['User-Agent', 'node-http-test']],
    })
    expect(response.status).toBe(201)
    expect(response.body).toBe('{"created":true}')

    const [task] = await waitForCompleted(redis.client, 1)
    expect(task?.method).toBe('POST')
    expect(task?.path).toBe('/things/7')
    expect(task?.params).toEqual({ color: 'red' })
    expect(task?.status_code).toBe(201)
    expect(task?.status_message).toBe('201 Created')
    expect(task?.task_name).toBeNull()
    expect(task?.recorded_successfully).toBe(true)
    expect(task?.client_ip_address).toBe('127.0.0.1')
    expect(task?.tags?.['service.name']).toBe('plain')
    expect(task?.request_headers).toContainEqual(['USER-AGENT', 'node-http-test'])
    expect(task?.response_headers).toContainEqual(['X-Custom', 'yes'])
  })

  it('skips ignored paths', async () => {
    const listener = withTop((_req, res) => res.end('ok'), { trackerUrl: redis.url, ignore: ['/health'] })
    recorders.push(listener)
    const url = await listen(listener)

    await sendRequest(`${url}/health`)
    await sendRequest(`${url}/work`)

    const tasks = await waitForCompleted(redis.client, 1)
    await listener.recorder.tracker.flush()
    expect((await readStoredTasks(redis.client)).pastTasks.map((task) => task.path)).toEqual(['/work'])
    expect(tasks[0]?.path).toBe('/work')
  })

  it('records an aborted request without status', async () => {
    const listener = withTop(() => {}, { trackerUrl: redis.url })
    recorders.push(listener)
    const url = await listen(listener)

    await expect(sendRequest(`${url}/never`, { abortAfterMs: 100 })).rejects.toThrow('aborted by test')

    const [task] = await waitForCompleted(redis.client, 1)
    expect(task?.path).toBe('/never')
    expect(task?.status_code).toBeNull()
    expect(task?.recorded_successfully).toBe(false)
    expect(task?.tags?.['web_top.outcome']).toBe('aborted')
  })

  it('close removes active entries', async () => {
    let release = () => {}
    const listener = withTop(
      (_req, res) => {
        release = () => res.end('late')
      },
      { trackerUrl: redis.url },
    )
    const url = await listen(listener)
    const pending = sendRequest(`${url}/held`)
    await waitFor('the active task', async () => {
      const stored = await readStoredTasks(redis.client)
      return Object.values(stored.processors)[0]?.path === '/held' ? true : undefined
    })

    await listener.close()
    expect((await readStoredTasks(redis.client)).processors).toEqual({})

    release()
    expect((await pending).body).toBe('late')
  })

  it('rejects a listener that is not a function', () => {
    expect(() => withTop('nope' as never)).toThrow(
      'web-top: withTop() expects a request listener function (received string)',
    )
  })
})

describe('createRequestTracker', () => {
  it('takes the task name from the server', async () => {
    const top = createRequestTracker({ trackerUrl: redis.url })
    recorders.push(top)
    const url = await listen((req, res) => {
      const route = { name: null as string | null }
      top.track(req, res, { resolveTaskName: () => route.name })
      route.name = req.url?.startsWith('/orders/') ? '/orders/:id' : null
      res.end('ok')
    })

    await sendRequest(`${url}/orders/12`)
    await sendRequest(`${url}/other`)

    const tasks = await waitForCompleted(redis.client, 2)
    const namesByPath = Object.fromEntries(tasks.map((task) => [task.path, task.task_name]))
    expect(namesByPath).toEqual({ '/orders/12': '/orders/:id', '/other': null })
  })

  it('tracks a request only once', async () => {
    const top = createRequestTracker({ trackerUrl: redis.url })
    recorders.push(top)
    const started: boolean[] = []
    const url = await listen((req, res) => {
      started.push(top.track(req, res, { taskName: 'first' }))
      started.push(top.track(req, res, { taskName: 'second' }))
      res.end('ok')
    })

    await sendRequest(`${url}/once`)

    const tasks = await waitForCompleted(redis.client, 1)
    expect(started).toEqual([true, false])
    expect(tasks).toHaveLength(1)
    expect(tasks[0]?.task_name).toBe('first')
  })

  it('gives concurrent requests their own processors', async () => {
    const top = createRequestTracker({ trackerUrl: redis.url })
    recorders.push(top)
    const held: ServerResponse[] = []
    const url = await listen((req, res) => {
      top.track(req, res)
      held.push(res)
    })

    const requests = Array.from({ length: 20 }, (_, index) => sendRequest(`${url}/slot/${index}`))
    const active = await waitFor('20 active tasks', async () => {
      const stored = await readStoredTasks(redis.client)
      return Object.keys(stored.processors).length === 20 ? stored.processors : undefined
    })
    expect(new Set(Object.values(active).map((task) => task.path)).size).toBe(20)

    for (const res of held) res.end('done')
    await Promise.all(requests)
    const completed = await waitForCompleted(redis.client, 20)
    expect(completed).toHaveLength(20)
    expect((await readStoredTasks(redis.client)).processors).toEqual({})
  })
})

describe('node:http server close', () => {
  it.each([
    ['withTop', 'const listener = withTop((req, res) => res.end("ok"), options)'],
    ['createRequestTracker', 'const top = createRequestTracker(options); const listener = (req, res) => { top.track(req, res); res.end("ok") }'],
  ])('%s lets the process exit', async (_name, setup) => {
    // No close() of the recorder: closing the server must be enough, as with Express.
    const script = `
      const { createServer } = require('node:http')
      const { createRequestTracker, withTop } = require('./src/index.ts')
      const options = { trackerUrl: process.env.TEST_REDIS_URL }
      ${setup}
      const server = createServer(listener)
      server.listen(0, '127.0.0.1', async () => {
        await fetch('http://127.0.0.1:' + server.address().port + '/')
        server.close(() => console.log('closed'))
      })
    `
    const result = await runNode(['--import', 'tsx', '-e', script], { TEST_REDIS_URL: redis.url }, 15_000)
    expect(result.stdout.trim()).toBe('closed')
    expect(result.code).toBe(0)
    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks).toHaveLength(1)
    expect(stored.processors).toEqual({})
  })

  it('lets the process exit while Redis rejects every write', async () => {
    // processors of the wrong type makes every batch fail, so a repair stays due.
    await redis.client.set('processors', 'not a hash')
    const script = `
      const { createServer } = require('node:http')
      const { withTop } = require('./src/index.ts')
      const listener = withTop((req, res) => res.end('ok'), { trackerUrl: process.env.TEST_REDIS_URL, logger: { warn() {}, error() {} } })
      const server = createServer(listener)
      server.listen(0, '127.0.0.1', async () => {
        await fetch('http://127.0.0.1:' + server.address().port + '/')
        await new Promise((resolve) => setTimeout(resolve, 100))
        server.close(() => console.log('closed'))
      })
    `
    const started = Date.now()
    const result = await runNode(['--import', 'tsx', '-e', script], { TEST_REDIS_URL: redis.url }, 15_000)
    expect(result.stdout.trim()).toBe('closed')
    expect(result.code).toBe(0)
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('lets a dozen recorders watch one server without a listener warning', async () => {
    const script = `
      const { createServer } = require('node:http')
      const { createRequestTracker } = require('./src/index.ts')
      const trackers = Array.from({ length: 12 }, () => createRequestTracker({ trackerUrl: process.env.TEST_REDIS_URL }))
      const server = createServer((req, res) => {
        for (const top of trackers) top.track(req, res)
        res.end('ok')
      })
      server.listen(0, '127.0.0.1', async () => {
        await fetch('http://127.0.0.1:' + server.address().port + '/')
        console.log('close listeners: ' + server.listenerCount('close'))
        server.close(() => console.log('closed'))
      })
    `
    const result = await runNode(['--import', 'tsx', '-e', script], { TEST_REDIS_URL: redis.url }, 15_000)
    expect(result.stderr).not.toContain('MaxListenersExceededWarning')
    expect(result.stdout.trim().split('\n')).toEqual(['close listeners: 1', 'closed'])
    expect(result.code).toBe(0)
    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks).toHaveLength(1)
    expect(stored.processors).toEqual({})
  })
})
