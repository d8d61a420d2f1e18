/**
 * The record-field table that runs against every framework: each request
 * is sent to a real server, and the records are read back from a real
 * Redis with HGETALL and LRANGE.
 */
import { hostname } from 'node:os'
import { threadId } from 'node:worker_threads'
import type Redis from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { REDACTED, type HttpTask } from '../../src/index'
import { CUSTOM_REASON, sendRequest, startApp, waitFor, type FrameworkName, type TestApp } from './http'
import { formatRequest, openConnection } from './raw-http'
import { readStoredTasks, type TestRedis } from './redis-server'

/** Field names of the reference record that the Python Top Framework writes for an HTTP task. */
export const PYTHON_RECORD_FIELDS = [
  'process_id',
  'thread_id',
  'process_internal_id',
  'task_id',
  'processor_name',
  'started_at',
  'updated_at',
  'ended_at',
  'recorded_successfully',
  'tags',
  'method',
  'path',
  'params',
  'uri',
  'client_ip_address',
  'request_headers',
  'status_code',
  'status_message',
  'response_headers',
] as const

/** Every field of the task JSON format, generic and HTTP. */
export const TASK_FIELDS = new Set([
  ...PYTHON_RECORD_FIELDS,
  'task_name',
  'host_name',
  'command_line',
  'protocol',
  'host',
])

/** ISO 8601 as written by the recorder: microseconds and a `+00:00` offset. */
export const WRITER_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$/

/** Reads the completed records from Redis once `count` of them are there. */
export async function waitForCompleted(client: Redis, count: number, keyPrefix = ''): Promise<HttpTask[]> {
  return waitFor(`${count} completed tasks`, async () => {
    const stored = await readStoredTasks(client, keyPrefix)
    return stored.pastTasks.length >= count ? stored.pastTasks : undefined
  })
}

/** Returns the values of every header pair with this name, compared case-insensitively. */
export function headerValues(pairs: HttpTask['request_headers'], name: string): string[] {
  const expectedName = name.toLowerCase()
  return (pairs ?? [])
    .filter(([pairName]) => pairName.toLowerCase() === expectedName)
    .map(([, value]) => value)
}

/** Defines the record-field tests for one framework against the Redis that `getRedis` returns. */
export function describeRecordFields(framework: FrameworkName, getRedis: () => TestRedis): void {
  describe(`${framework} record fields`, () => {
    let app: TestApp | undefined
    let redis: TestRedis

    beforeEach(async () => {
      redis = getRedis()
      await redis.client.flushall()
    })

    afterEach(async () => {
      await app?.close()
      app = undefined
    })

    const start = async (options: Parameters<typeof startApp>[1] = {}, host?: string) => {
      app = await startApp(framework, { trackerUrl: redis.url, ...options }, host)
      return app
    }

    it('records request fields', async () => {
      const running = await start({ tags: { 'service.name': 'shop' }, processorName: 'api-1' })
      const response = await sendRequest(`${running.url}/users/42?page=2&tag=a&tag=b`, {
        headers: [
          ['User-Agent', 'web-top-test/1.0'],
          ['X-Repeat', 'first'],
          ['X-Repeat', 'second'],
        ],
      })
      expect(response.status).toBe(200)

      const [task] = await waitForCompleted(redis.client, 1)
      expect(task?.method).toBe('GET')
      expect(task?.path).toBe('/users/42')
      expect(task?.params).toEqual({ page: '2', tag: ['a', 'b'] })
      expect(task?.uri).toBe('/users/42?page=2&tag=a&tag=b')
      expect(task?.host).toBe(`127.0.0.1:${running.port}`)
      expect(task?.protocol).toBe('http')
      expect(task?.client_ip_address).toBe('127.0.0.1')
      expect(task?.task_name).toBe('/users/:id')
    })

    it('records the path of absolute-form targets', async () => {
      const running = await start()
      const connection = await openConnection(running.port)
      try {
        connection.write(formatRequest('GET', 'http://other.example:8080/users/7?q=1'))
        connection.write(formatRequest('GET', 'http://other.example:8080/health'))
        const responses = await connection.readResponses(2)
        expect(responses.map((response) => response.status)).toEqual([200, 200])
      } finally {
        connection.destroy()
      }

      const tasks = await waitForCompleted(redis.client, 2)
      const withQuery = tasks.find((task) => task.path === '/users/7')
      expect(withQuery?.params).toEqual({ q: '1' })
      expect(withQuery?.uri).toBe('http://other.example:8080/users/7?q=1')
      expect(withQuery?.task_name).toBe('/users/:id')
      const withoutQuery = tasks.find((task) => task.path === '/health')
      expect(withoutQuery?.params).toBeNull()
      expect(withoutQuery?.uri).toBe('http://other.example:8080/health')
    })

    it('records request headers upper-cased', async () => {
      const running = await start()
      await sendRequest(`${running.url}/users/1`, {
        headers: [
          ['User-Agent', 'web-top-test/1.0'],
          ['X-Repeat', 'first'],
          ['X-Repeat', 'second'],
        ],
      })

      const [task] = await waitForCompleted(redis.client, 1)
      const headers = task?.request_headers ?? []
      expect(headers).toContainEqual(['USER-AGENT', 'web-top-test/1.0'])
      expect(headers).toContainEqual(['HOST', `127.0.0.1:${running.port}`])
      expect(headerValues(headers, 'x-repeat')).toEqual(['first', 'second'])
      for (const [name] of headers) expect(name).toBe(name.toUpperCase())
    })

    it('joins repeated single-value request headers', async () => {
      const running = await start()
      const connection = await openConnection(running.port)
      try {
        connection.write(
          formatRequest('GET', '/users/1', [
            'X-Forwarded-For: 203.0.113.7',
            'User-Agent: first-agent',
            'X-Repeat: first',
            'x-forwarded-for: 10.0.0.1, 10.0.0.2',
            'user-agent: second-agent',
            'X-Repeat: second',
            'CF-IPCountry: FI',
          ]),
        )
        const [response] = await connection.readResponses(1)
        expect(response?.status).toBe(200)
      } finally {
        connection.destroy()
      }

      const [task] = await waitForCompleted(redis.client, 1)
      const headers = task?.request_headers ?? []
      expect(headers).toEqual([
        ['HOST', '127.0.0.1'],
        ['X-FORWARDED-FOR', '203.0.113.7, 10.0.0.1, 10.0.0.2'],
        ['USER-AGENT', 'first-agent, second-agent'],
        ['X-REPEAT', 'first'],
        ['X-REPEAT', 'second'],
        ['CF-IPCOUNTRY', 'FI'],
      ])
    })

    it('redacts a joined request header', async () => {
      const running = await start({ redactHeaders: ['x-forwarded-for'] })
      await sendRequest(`${running.url}/users/1`, {
        headers: [
          ['X-Forwarded-For', '203.0.113.7'],
          ['X-Forwarded-For', '10.0.0.1'],
        ],
      })

      const [task] = await waitForCompleted(redis.client, 1)
      expect(headerValues(task?.request_headers ?? [], 'x-forwarded-for')).toEqual([REDACTED])
      expect(JSON.stringify(task)).not.toMatch(/203\.0\.113\.7|10\.0\.0\.1/)
    })

    it('records process fields and tags', async () => {
      const running = await start({ tags: { 'service.name': 'shop' }, processorName: 'api-1' })
      await sendRequest(`${running.url}/users/1`)

      const [task] = await waitForCompleted(redis.client, 1)
      expect(task?.host_name).toBe(hostname())
      expect(task?.process_id).toBe(process.pid)
      expect(task?.thread_id).toBe(threadId)
      expect(task?.processor_name).toBe('api-1')
      expect(task?.command_line).toEqual(process.argv)
      expect(task?.tags?.['node.version']).toBe(process.version)
      expect(task?.tags?.['service.name']).toBe('shop')
      expect(typeof task?.task_id).toBe('string')
      expect(task?.process_internal_id).toMatch(/^\d+\.\d+$/)
    })

    it('records the end fields', async () => {
      const running = await start()
      const before = Date.now()
      await sendRequest(`${running.url}/users/1`)

      const [task] = await waitForCompleted(redis.client, 1)
      expect(task?.started_at).toMatch(WRITER_TIMESTAMP)
      expect(task?.ended_at).toMatch(WRITER_TIMESTAMP)
      expect(task?.updated_at).toBe(task?.ended_at)
      expect(Date.parse(task?.started_at ?? '')).toBeGreaterThanOrEqual(before - 1)
      expect(Date.parse(task?.ended_at ?? '')).toBeGreaterThanOrEqual(Date.parse(task?.started_at ?? ''))
      expect(task?.recorded_successfully).toBe(true)
      expect(task?.status_code).toBe(200)
      expect(task?.status_message).toBe('200 OK')
    })

    it('records response headers as sent', async () => {
      const running = await start()
      const response = await sendRequest(`${running.url}/users/1`)

      const [task] = await waitForCompleted(redis.client, 1)
      const headers = task?.response_headers ?? []
      expect(headerValues(headers, 'x-custom')).toEqual(['yes'])
      expect(headerValues(headers, 'content-type')).toEqual([response.headers['content-type']])
      expect(headerValues(headers, 'content-length')).toEqual([response.headers['content-length']])
      expect(headerValues(headers, 'set-cookie')).toEqual([REDACTED, REDACTED])
      expect(headerValues(headers, 'x-api-key')).toEqual([REDACTED])
    })

    it('names nested routes with their prefix', async () => {
      const running = await start()
      await sendRequest(`${running.url}/api/items/7`)

      const [task] = await waitForCompleted(redis.client, 1)
      expect(task?.task_name).toBe('/api/items/:id')
      expect(task?.path).toBe('/api/items/7')
    })

    it('names a failed nested route', async () => {
      const running = await start()
      const response = await sendRequest(`${running.url}/api/fail/3`)
      expect(response.status).toBe(500)

      const [task] = await waitForCompleted(redis.client, 1)
      expect(task?.task_name).toBe('/api/fail/:id')
      expect(task?.status_code).toBe(500)
      expect(task?.status_message).toBe('500 Internal Server Error')
    })

    it('leaves task_name null on 404', async () => {
      const running = await start()
      const response = await sendRequest(`${running.url}/no/such/route`)
      expect(response.status).toBe(404)

      const [task] = await waitForCompleted(redis.client, 1)
      expect(task?.task_name).toBeNull()
      expect(task?.status_code).toBe(404)
      expect(task?.status_message).toBe('404 Not Found')
    })

    it('records a custom status message', async () => {
      const running = await start()
      const response = await sendRequest(`${running.url}/teapot`)
      expect(response.statusMessage).toBe(CUSTOM_REASON)

      const [task] = await waitForCompleted(redis.client, 1)
      expect(task?.status_code).toBe(418)
      expect(task?.status_message).toBe(`418 ${CUSTOM_REASON}`)
    })

    it('shows the start record while in flight', async () => {
      const running = await start({ processorName: 'api-1' })
      const pending = sendRequest(`${running.url}/wait?step=1`, { headers: [['User-Agent', 'slow-client']] })

      const active = await waitFor('the active task in processors', async () => {
        const stored = await readStoredTasks(redis.client)
        return Object.values(stored.processors)[0]
      })
      expect(active.method).toBe('GET')
      expect(active.path).toBe('/wait')
      expect(active.params).toEqual({ step: '1' })
      expect(active.uri).toBe('/wait?step=1')
      expect(active.host).toBe(`127.0.0.1:${running.port}`)
      expect(active.protocol).toBe('http')
      expect(active.client_ip_address).toBe('127.0.0.1')
      expect(active.request_headers).toContainEqual(['USER-AGENT', 'slow-client'])
      expect(active.task_name).toBe(framework.startsWith('fastify') ? '/wait' : null)
      expect(active.host_name).toBe(hostname())
      expect(active.process_id).toBe(process.pid)
      expect(active.thread_id).toBe(threadId)
      expect(active.processor_name).toBe('api-1')
      expect(active.command_line).toEqual(process.argv)
      expect(active.tags?.['node.version']).toBe(process.version)
      expect(active.started_at).toMatch(WRITER_TIMESTAMP)
      expect(active.updated_at).toBe(active.started_at)
      expect(active.ended_at).toBeNull()
      expect(active.recorded_successfully).toBeNull()
      expect(active.status_code).toBeNull()
      expect(active.status_message).toBeNull()
      expect(active.response_headers).toBeNull()

      running.releaseWaiting()
      await pending
      const [completed] = await waitForCompleted(redis.client, 1)
      expect(completed?.task_id).toBe(active.task_id)
      expect(completed?.started_at).toBe(active.started_at)
      expect(completed?.task_name).toBe('/wait')
      expect((await readStoredTasks(redis.client)).processors).toEqual({})
    })

    it('records a request once', async () => {
      const running = await start()
      for (let i = 0; i < 5; i++) await sendRequest(`${running.url}/users/${i}`)
      await waitForCompleted(redis.client, 5)
      await new Promise((resolve) => setTimeout(resolve, 100))

      const stored = await readStoredTasks(redis.client)
      expect(stored.pastTasks).toHaveLength(5)
      expect(new Set(stored.pastTasks.map((task) => task.task_id)).size).toBe(5)
      expect(stored.processors).toEqual({})
    })

    it('records an aborted request', async () => {
      const running = await start()
      await expect(sendRequest(`${running.url}/hang`, { abortAfterMs: 100 })).rejects.toThrow('aborted by test')

      const [task] = await waitForCompleted(redis.client, 1)
      expect(task?.recorded_successfully).toBe(false)
      expect(task?.status_code).toBeNull()
      expect(task?.status_message).toBeNull()
      expect(task?.response_headers).toBeNull()
      expect(task?.tags?.['web_top.outcome']).toBe('aborted')
      expect((await readStoredTasks(redis.client)).processors).toEqual({})
    })

    it('skips ignored paths', async () => {
      const running = await start({ ignore: ['/health', /^\/teapot/] })
      await sendRequest(`${running.url}/health`)
      await sendRequest(`${running.url}/teapot`)
      await sendRequest(`${running.url}/users/1`)

      const tasks = await waitForCompleted(redis.client, 1)
      await new Promise((resolve) => setTimeout(resolve, 100))
      const stored = await readStoredTasks(redis.client)
      expect(tasks[0]?.path).toBe('/users/1')
      expect(stored.pastTasks.map((task) => task.path)).toEqual(['/users/1'])
    })

    it('redacts secret headers and params', async () => {
      const running = await start()
      await sendRequest(`${running.url}/users/1?token=abc&password=hunter2&page=3`, {
        headers: [
          ['Authorization', 'Bearer abc.def'],
          ['Cookie', 'session=abc'],
          ['X-Api-Key', 'k-123'],
        ],
      })

      const [task] = await waitForCompleted(redis.client, 1)
      expect(headerValues(task?.request_headers, 'authorization')).toEqual([REDACTED])
      expect(headerValues(task?.request_headers, 'cookie')).toEqual([REDACTED])
      expect(headerValues(task?.request_headers, 'x-api-key')).toEqual([REDACTED])
      expect(task?.params).toEqual({ token: REDACTED, password: REDACTED, page: '3' })
      expect(task?.uri).toBe(`/users/1?token=${REDACTED}&password=${REDACTED}&page=3`)
      expect(JSON.stringify(task)).not.toMatch(/hunter2|abc\.def|k-123|session=abc/)
    })

    it('redacts headers containing secret words', async () => {
      const running = await start()
      const secretHeaders: Array<[string, string]> = [
        ['X-Authorization', 'Bearer hunter-1'],
        ['Authentication', 'hunter-2'],
        ['X-Authtoken', 'hunter-3'],
        ['X_API_KEY', 'hunter-4'],
        ['X-Passwords', 'hunter-5'],
        ['X-Secrets', 'hunter-6'],
        ['X-Sessionid', 'hunter-7'],
        ['X-Access-Tokens', 'hunter-8'],
        ['X-Csrftoken', 'hunter-9'],
        ['Ocp-Apim-Subscription-Key', 'hunter-10'],
        ['X-Functions-Key', 'hunter-11'],
        ['X-Private-Key', 'hunter-12'],
      ]
      const visibleHeaders: Array<[string, string]> = [
        ['Keep-Alive', 'timeout=5'],
        ['Sec-Fetch-Mode', 'navigate'],
        ['Sec-Fetch-Site', 'same-origin'],
        ['Accept-Language', 'en-GB'],
        ['Content-Type', 'text/plain'],
        ['If-None-Match', '"v1"'],
        ['User-Agent', 'web-top-test/1.0'],
        ['Monkey', 'banana'],
        ['Idempotency-Key', 'order-17'],
        ['X-Author', 'ann'],
      ]
      await sendRequest(`${running.url}/users/1?authorization=hunter-13&author=ann&bypass=on`, {
        headers: [...secretHeaders, ...visibleHeaders],
      })

      const [task] = await waitForCompleted(redis.client, 1)
      for (const [name] of secretHeaders) {
        expect(headerValues(task?.request_headers, name), name).toEqual([REDACTED])
      }
      for (const [name, value] of visibleHeaders) {
        expect(headerValues(task?.request_headers, name), name).toEqual([value])
      }
      expect(headerValues(task?.request_headers, 'host')).toEqual([`127.0.0.1:${running.port}`])
      expect(task?.params).toEqual({ authorization: REDACTED, author: 'ann', bypass: 'on' })
      expect(task?.uri).toBe(`/users/1?authorization=${REDACTED}&author=ann&bypass=on`)
      expect(JSON.stringify(task)).not.toMatch(/hunter/)
    })

    it('applies the redact and allow options', async () => {
      const running = await start({
        redactHeaders: ['X-Tenant'],
        allowHeaders: ['X-Session-Id'],
        redactParams: ['email'],
        allowParams: ['token'],
      })
      const query = 'email=ann%40example.test&token=public-1&password=hunter-1'
      await sendRequest(`${running.url}/users/1?${query}`, {
        headers: [
          ['X-Tenant', 'acme'],
          ['X-Session-Id', 'session-7'],
          ['X-Auth-Token', 'hunter-2'],
        ],
      })

      const [task] = await waitForCompleted(redis.client, 1)
      expect(headerValues(task?.request_headers, 'x-tenant')).toEqual([REDACTED])
      expect(headerValues(task?.request_headers, 'x-session-id')).toEqual(['session-7'])
      expect(headerValues(task?.request_headers, 'x-auth-token')).toEqual([REDACTED])
      expect(task?.params).toEqual({ email: REDACTED, token: 'public-1', password: REDACTED })
    })

    it('writes records shaped like Python', async () => {
      const running = await start()
      const pending = sendRequest(`${running.url}/wait`)
      const active = await waitFor('the active task', async () => {
        const hash = await redis.client.hgetall('processors')
        return Object.values(hash)[0]
      })
      running.releaseWaiting()
      await pending
      const [completedText] = await waitFor('the completed task', async () => {
        const list = await redis.client.lrange('past_tasks', 0, -1)
        return list.length > 0 ? list : undefined
      })

      for (const text of [active, completedText as string]) {
        const record = JSON.parse(text) as Record<string, unknown>
        for (const field of PYTHON_RECORD_FIELDS) expect(record).toHaveProperty(field)
        for (const field of Object.keys(record)) expect(TASK_FIELDS).toContain(field)
      }
    })

    it('records IPv6 clients', async (context) => {
      if (!(await hasIpv6Loopback())) {
        context.skip('this machine has no IPv6 loopback (::1)')
      }
      const running = await start({}, '::1')
      await sendRequest(`${running.url}/users/6`)

      const [task] = await waitForCompleted(redis.client, 1)
      expect(task?.client_ip_address).toBe('::1')
      expect(task?.host).toBe(`[::1]:${running.port}`)
    })
  })
}

let ipv6Available: Promise<boolean> | undefined

/** Returns whether a server can listen on `::1`, checked once per process. */
export function hasIpv6Loopback(): Promise<boolean> {
  ipv6Available ??= import('node:net').then(
    ({ createServer }) =>
      new Promise<boolean>((resolve) => {
        const server = createServer()
        server.once('error', () => resolve(false))
        server.listen(0, '::1', () => server.close(() => resolve(true)))
      }),
  )
  return ipv6Available
}
