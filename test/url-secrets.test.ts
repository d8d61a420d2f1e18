/**
 * Secrets that URLs carry outside the request line: the Referer a page
 * sends, the Location of a redirect, and the user info of a request target
 * in absolute form. Real Express 5 and Fastify 5 apps record to a private
 * Redis, and the stored records must show them masked.
 */
import type { AddressInfo } from 'node:net'
import express from 'express'
import fastify, { type FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { topMiddleware, topPlugin, type HttpTask, type TopOptions } from '../src/index'
import { sendRequest } from './helpers/http'
import { formatRequest, openConnection } from './helpers/raw-http'
import { headerValues } from './helpers/recording-cases'
import { tasksFor, waitForPath } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const REFERER = 'https://ann:s3cret@shop.test/reset?token=REFERER-TOKEN&page=2#access_token=FRAGMENT-TOKEN&state=7'
const MASKED_REFERER = 'https://[REDACTED]@shop.test/reset?token=[REDACTED]&page=2#access_token=[REDACTED]&state=7'

const REFRESH = '0; url="/next?token=REFRESH-TOKEN&page=2"'
const LINK = '<https://cdn.test/app.js?sig=LINK-SIG&v=1>; rel="preload", </list?token=LINK-TOKEN&page=2>; rel="next"'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis.close()
})

interface UrlApp {
  port: number
  close(): Promise<void>
}

/** Options of the apps beyond the tracker, such as `redactParams`. */
type AppOptions = Pick<TopOptions, 'redactParams' | 'allowHeaders' | 'ignore' | 'logger'>

/** Starts an Express 5 app whose `/go` redirects with a token in the query. */
async function startExpressApp(options: AppOptions = {}): Promise<UrlApp> {
  const app = express()
  const middleware = topMiddleware({ ...options, trackerUrl: redis.url, batchWindowMs: 0 })
  app.use(middleware)
  app.get('/go', (_req, res) => res.redirect('/callback?access_token=LOCATION-TOKEN&page=3'))
  app.get('/links', (_req, res) => {
    res.set('Refresh', REFRESH).set('Link', LINK)
    res.send('ok')
  })
  app.use((_req, res) => res.send('ok'))
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await new Promise((resolve) => server.close(resolve))
      await middleware.close()
    },
  }
}

/** Starts a Fastify 5 app with the same routes. */
async function startFastifyApp(options: AppOptions = {}): Promise<UrlApp> {
  const app: FastifyInstance = fastify()
  await app.register(topPlugin, { ...options, trackerUrl: redis.url, batchWindowMs: 0 })
  app.get('/go', async (_request, reply) => reply.redirect('/callback?access_token=LOCATION-TOKEN&page=3'))
  app.get('/links', async (_request, reply) => reply.header('Refresh', REFRESH).header('Link', LINK).send('ok'))
  app.setNotFoundHandler(async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}

/** Sends a GET with `target` as the request target, as written, which a URL-parsing client would change. */
async function sendRawTarget(port: number, target: string): Promise<void> {
  const connection = await openConnection(port)
  try {
    connection.write(formatRequest('GET', target))
    await connection.readResponses(1)
  } finally {
    connection.destroy()
  }
}

/** Waits for the completed record of `path`, the only one. */
async function readOnly(path: string): Promise<HttpTask | undefined> {
  const stored = await waitForPath(redis.client, path)
  const tasks = tasksFor(stored, path)
  expect(tasks).toHaveLength(1)
  return tasks[0]
}

describe.each([
  ['express5', startExpressApp],
  ['fastify5', startFastifyApp],
] as const)('%s URL secrets', (_framework, startApp) => {
  let app: UrlApp

  beforeEach(async () => {
    await redis.client.flushall()
    app = await startApp()
  })

  afterEach(async () => {
    await app.close()
  })

  it('masks the Referer', async () => {
    await sendRequest(`http://127.0.0.1:${app.port}/page`, { headers: [['Referer', REFERER]] })

    const task = await readOnly('/page')
    expect(headerValues(task?.request_headers ?? [], 'referer')).toEqual([MASKED_REFERER])
  })

  it('masks the Location of a redirect', async () => {
    const response = await sendRequest(`http://127.0.0.1:${app.port}/go`)
    expect(response.status).toBe(302)

    const task = await readOnly('/go')
    expect(headerValues(task?.response_headers ?? [], 'location')).toEqual(['/callback?access_token=[REDACTED]&page=3'])
  })

  it('masks the URLs of Refresh and Link', async () => {
    const response = await sendRequest(`http://127.0.0.1:${app.port}/links`)
    expect(response.status).toBe(200)

    const task = await readOnly('/links')
    const headers = task?.response_headers ?? []
    expect(headerValues(headers, 'refresh')).toEqual(['0; url="/next?token=[REDACTED]&page=2"'])
    expect(headerValues(headers, 'link')).toEqual([
      '<https://cdn.test/app.js?sig=[REDACTED]&v=1>; rel="preload", </list?token=[REDACTED]&page=2>; rel="next"',
    ])
  })

  it('masks session id and passcode params', async () => {
    await sendRequest(`http://127.0.0.1:${app.port}/shop?PHPSESSID=S1&passcode=S2&page=1`)

    const task = await readOnly('/shop')
    expect(task?.params).toEqual({ PHPSESSID: '[REDACTED]', passcode: '[REDACTED]', page: '1' })
    expect(task?.uri).toBe('/shop?PHPSESSID=[REDACTED]&passcode=[REDACTED]&page=1')
  })

  it('masks camelCase and spaced params', async () => {
    const query =
      'userPass=SECRET50&dbPw=SECRET51&otpCode=SECRET52&licenseKey=SECRET53&stripeKey=SECRET54' +
      '&sshKey=SECRET55&userOtp=SECRET56&newPass=SECRET57&db%20pass=SECRET58&api%20key=SECRET59' +
      '&my%20otp=SECRET60&passengerCount=3&keyboardLayout=us'
    await sendRequest(`http://127.0.0.1:${app.port}/ok?${query}`)

    const task = await readOnly('/ok')
    expect(task?.params).toEqual({
      userPass: '[REDACTED]',
      dbPw: '[REDACTED]',
      otpCode: '[REDACTED]',
      licenseKey: '[REDACTED]',
      stripeKey: '[REDACTED]',
      sshKey: '[REDACTED]',
      userOtp: '[REDACTED]',
      newPass: '[REDACTED]',
      'db pass': '[REDACTED]',
      'api key': '[REDACTED]',
      'my otp': '[REDACTED]',
      passengerCount: '3',
      keyboardLayout: 'us',
    })
    expect(task?.uri).toBe(`/ok?${query.replace(/=SECRET\d+/g, '=[REDACTED]')}`)
    expect(JSON.stringify(task)).not.toContain('SECRET')
  })

  it('masks a secret in a param name', async () => {
    await sendRequest(`http://127.0.0.1:${app.port}/named?token%3DSECRET27&key%3DSECRET28&page=1`)

    const task = await readOnly('/named')
    expect(task?.params).toEqual({ 'token=[REDACTED]': '[REDACTED]', 'key=[REDACTED]': '[REDACTED]', page: '1' })
    expect(task?.uri).toBe('/named?token%3D[REDACTED]=[REDACTED]&key%3D[REDACTED]=[REDACTED]&page=1')
    expect(JSON.stringify(task)).not.toContain('SECRET27')
    expect(JSON.stringify(task)).not.toContain('SECRET28')
  })

  it('masks Sec-WebSocket-Protocol', async () => {
    await sendRequest(`http://127.0.0.1:${app.port}/socket`, {
      headers: [['Sec-WebSocket-Protocol', 'access_token, SECRET39']],
    })

    const task = await readOnly('/socket')
    expect(headerValues(task?.request_headers ?? [], 'sec-websocket-protocol')).toEqual(['[REDACTED]'])
    expect(JSON.stringify(task)).not.toContain('SECRET39')
  })

  it('keeps an allowed Sec-WebSocket-Protocol', async () => {
    await app.close()
    app = await startApp({ allowHeaders: ['Sec-WebSocket-Protocol'] })
    await sendRequest(`http://127.0.0.1:${app.port}/socket`, {
      headers: [['Sec-WebSocket-Protocol', 'graphql-transport-ws']],
    })

    const task = await readOnly('/socket')
    expect(headerValues(task?.request_headers ?? [], 'sec-websocket-protocol')).toEqual(['graphql-transport-ws'])
  })

  it('masks a Referer password containing @', async () => {
    await sendRequest(`http://127.0.0.1:${app.port}/page`, {
      headers: [['Referer', 'https://ru:REF-P@SS@shop.test/?a=1']],
    })

    const task = await readOnly('/page')
    expect(headerValues(task?.request_headers ?? [], 'referer')).toEqual(['https://[REDACTED]@shop.test/?a=1'])
  })

  it.each([
    ['X-Original-URI', '/api/x?access_token=URI-TOKEN&page=1', '/api/x?access_token=[REDACTED]&page=1'],
    ['X-Request-URI', '/y?password=REQUEST-PASSWORD', '/y?password=[REDACTED]'],
    ['X-Envoy-Original-Path', '/z?token=ENVOY-TOKEN', '/z?token=[REDACTED]'],
    ['X-Original-URL', '/o?token=ORIGINAL-TOKEN', '/o?token=[REDACTED]'],
    ['X-Rewrite-URL', '/r?token=REWRITE-TOKEN', '/r?token=[REDACTED]'],
  ])('masks the query of %s', async (name, value, masked) => {
    await sendRequest(`http://127.0.0.1:${app.port}/proxied`, { headers: [[name, value]] })

    const task = await readOnly('/proxied')
    expect(headerValues(task?.request_headers ?? [], name)).toEqual([masked])
  })

  it('masks a URL given as a parameter value', async () => {
    const next = encodeURIComponent('https://ann:NEXT-PASSWORD@shop.test/?token=NEXT-TOKEN&page=6')
    await sendRequest(`http://127.0.0.1:${app.port}/login?next=${next}&page=5`)

    const task = await readOnly('/login')
    const maskedNext = 'https://[REDACTED]@shop.test/?token=[REDACTED]&page=6'
    expect(task?.params).toEqual({ next: maskedNext, page: '5' })
    expect(task?.uri).toBe(`/login?next=https://[REDACTED]@shop.test/?token=[REDACTED]%26page=6&page=5`)
    expect(JSON.stringify(task)).not.toMatch(/NEXT-PASSWORD|NEXT-TOKEN/)
  })

  it('masks a URL parameter inside the Referer', async () => {
    const next = encodeURIComponent('https://ann:NEXT-PASSWORD@shop.test/')
    await sendRequest(`http://127.0.0.1:${app.port}/page`, {
      headers: [['Referer', `https://shop.test/login?next=${next}`]],
    })

    const task = await readOnly('/page')
    expect(headerValues(task?.request_headers ?? [], 'referer')).toEqual([
      'https://shop.test/login?next=https://[REDACTED]@shop.test/',
    ])
  })

  it('masks a relative URL given as a parameter value', async () => {
    const returnTo = encodeURIComponent('/oauth/callback?code=AUTH-CODE&state=x')
    await sendRequest(`http://127.0.0.1:${app.port}/relative?returnTo=${returnTo}&next=//evil.test/cb?token=NET-TOKEN`)

    const task = await readOnly('/relative')
    expect(task?.params).toEqual({
      returnTo: '/oauth/callback?code=[REDACTED]&state=x',
      next: '//evil.test/cb?token=[REDACTED]',
    })
    expect(task?.uri).toBe('/relative?returnTo=/oauth/callback?code=[REDACTED]%26state=x&next=//evil.test/cb?token=[REDACTED]')
    expect(JSON.stringify(task)).not.toMatch(/AUTH-CODE|NET-TOKEN/)
  })

  it('masks a relative URL parameter inside the Referer', async () => {
    await sendRequest(`http://127.0.0.1:${app.port}/page`, {
      headers: [['Referer', 'https://shop.test/login?next=/reset?token=RESET-TOKEN']],
    })

    const task = await readOnly('/page')
    expect(headerValues(task?.request_headers ?? [], 'referer')).toEqual([
      'https://shop.test/login?next=/reset?token=[REDACTED]',
    ])
  })

  it('records a target of deeply nested URLs', async () => {
    const response = await sendRequest(`http://127.0.0.1:${app.port}/nested?a=${'?a='.repeat(3000)}`)
    expect(response.status).toBe(200)

    const task = await readOnly('/nested')
    expect(task?.uri).toBe(`/nested?a=${'?a='.repeat(8)}[REDACTED]`)
    expect(task?.params).toEqual({ a: `${'?a='.repeat(8)}[REDACTED]` })
  })

  it('cuts a long value before an emoji', async () => {
    // 'a' then emoji of two UTF-16 code units each: the 2,048th unit is the first half of one.
    await sendRequest(`http://127.0.0.1:${app.port}/emoji?q=a${encodeURIComponent('\u{1F600}'.repeat(1100))}`)

    const task = await readOnly('/emoji')
    const value = String(task?.params?.q)
    expect(value).toBe(`a${'\u{1F600}'.repeat(1023)}…[truncated]`)
    expect(value).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/)
  })

  it('masks backslash forms in values', async () => {
    const values = [
      'https:\\\\ann:BS-ONE@shop.test/',
      'http:/ann:BS-TWO@shop.test/',
      '\\\\ann:BS-THREE@shop.test/',
      '/a;sid=BS-FOUR/b',
      'https:/ann:BS-FIVE@shop.test/',
    ]
    const query = values.map((value, index) => `v${index}=${encodeURIComponent(value)}`).join('&')
    // A raw colon before an encoded slash, as a client that encodes only the slash sends it.
    await sendRequest(`http://127.0.0.1:${app.port}/backslash?${query}&v5=https:%2Fann:BS-SIX@shop.test/`)

    const task = await readOnly('/backslash')
    expect(task?.params).toEqual({
      v0: 'https:\\\\[REDACTED]@shop.test/',
      v1: 'http:/[REDACTED]@shop.test/',
      v2: '\\\\[REDACTED]@shop.test/',
      v3: '/a;sid=[REDACTED]/b',
      v4: 'https:/[REDACTED]@shop.test/',
      v5: 'https:/[REDACTED]@shop.test/',
    })
    expect(JSON.stringify(task)).not.toContain('BS-')
  })

  it('masks user info in a scheme-relative target', async () => {
    await sendRawTarget(app.port, '//ann:s3cret@shop.test/scheme-relative?page=4')

    const stored = await waitForPath(redis.client, '//[REDACTED]@shop.test/scheme-relative')
    const [task] = stored.pastTasks
    expect(task?.uri).toBe('//[REDACTED]@shop.test/scheme-relative?page=4')
    expect(JSON.stringify(stored.pastTasks)).not.toContain('s3cret')
  })

  it('masks user info after slash-backslash', async () => {
    await sendRawTarget(app.port, '/\\ann:s3cret@shop.test/backslash-target')

    const stored = await waitForPath(redis.client, '/\\[REDACTED]@shop.test/backslash-target')
    expect(JSON.stringify(stored.pastTasks)).not.toContain('s3cret')
  })

  it('masks user info in an absolute-form target', async () => {
    await sendRawTarget(app.port, 'http://ann:s3cret@127.0.0.1/absolute?page=4')

    const stored = await waitForPath(redis.client, '/absolute')
    const [task] = stored.pastTasks
    expect(task?.uri).toBe('http://[REDACTED]@127.0.0.1/absolute?page=4')
    expect(JSON.stringify(stored.pastTasks)).not.toContain('s3cret')
  })

  it('takes the host of an absolute-form target', async () => {
    // The raw request's Host header names 127.0.0.1, which the server must ignore here.
    await sendRawTarget(app.port, 'http://ann:s3cret@shop.test:8080/absolute-host')

    const task = await readOnly('/absolute-host')
    expect(task?.host).toBe('shop.test:8080')
    expect(task?.uri).toBe('http://[REDACTED]@shop.test:8080/absolute-host')
  })

  it('keeps the Host header for a target cut at a password', async () => {
    // The `/` in the password ends the target's authority at `ann:pa`.
    await sendRawTarget(app.port, 'http://ann:pa/ss@shop.test/cut-host')

    const task = await readOnly('/ss@shop.test/cut-host')
    expect(task?.host).toBe('127.0.0.1')
  })

  it('masks absolute-form user info without query', async () => {
    await sendRawTarget(app.port, 'http://ann:s3cret@127.0.0.1/plain')

    const task = await readOnly('/plain')
    expect(task?.params).toBeNull()
    expect(task?.uri).toBe('http://[REDACTED]@127.0.0.1/plain')
    expect(JSON.stringify(task)).not.toContain('s3cret')
  })

  it('masks assertion, SAML and one-time params', async () => {
    const query = 'client_assertion=S1&SAMLResponse=S2&oobCode=S3&hmac=S4&ticket=S5&pw=S6&page=1'
    await sendRequest(`http://127.0.0.1:${app.port}/signin?${query}`)

    const task = await readOnly('/signin')
    expect(task?.params).toEqual({
      client_assertion: '[REDACTED]',
      SAMLResponse: '[REDACTED]',
      oobCode: '[REDACTED]',
      hmac: '[REDACTED]',
      ticket: '[REDACTED]',
      pw: '[REDACTED]',
      page: '1',
    })
    expect(JSON.stringify(task)).not.toMatch(/S[1-6]/)
  })

  it('masks one-time codes, card data and sid', async () => {
    const query =
      'verification_code=S1&resetCode=S2&device_code=S3&pin=S4&card_number=S5&cvv=S6&cvc2=S7&sid=S8&zip_code=10115&spin=2'
    await sendRequest(`http://127.0.0.1:${app.port}/verify?${query}`)

    const task = await readOnly('/verify')
    expect(task?.params).toEqual({
      verification_code: '[REDACTED]',
      resetCode: '[REDACTED]',
      device_code: '[REDACTED]',
      pin: '[REDACTED]',
      card_number: '[REDACTED]',
      cvv: '[REDACTED]',
      cvc2: '[REDACTED]',
      sid: '[REDACTED]',
      zip_code: '10115',
      spin: '2',
    })
    expect(JSON.stringify(task)).not.toMatch(/S[1-8]/)
  })

  it('masks Azure principal and HMAC headers', async () => {
    await sendRequest(`http://127.0.0.1:${app.port}/hooks`, {
      headers: [
        ['X-Ms-Client-Principal', 'PRINCIPAL-CLAIMS'],
        ['X-Shopify-Hmac-Sha256', 'HMAC-DIGEST'],
        ['X-Ms-Client-Principal-Name', 'ann@shop.test'],
      ],
    })

    const task = await readOnly('/hooks')
    const headers = task?.request_headers ?? []
    expect(headerValues(headers, 'x-ms-client-principal')).toEqual(['[REDACTED]'])
    expect(headerValues(headers, 'x-shopify-hmac-sha256')).toEqual(['[REDACTED]'])
    expect(headerValues(headers, 'x-ms-client-principal-name')).toEqual(['ann@shop.test'])
  })

  it('masks redactParams names in brackets', async () => {
    await app.close()
    app = await startApp({ redactParams: ['tenant'] })
    const query = 'TENANT=T1&tenant[0]=T2&tenant[]=T3&user[tenant]=T4&tenants=visible'
    await sendRequest(`http://127.0.0.1:${app.port}/tenants?${query}`)

    const task = await readOnly('/tenants')
    expect(task?.params).toEqual({
      TENANT: '[REDACTED]',
      'tenant[0]': '[REDACTED]',
      'tenant[]': '[REDACTED]',
      'user[tenant]': '[REDACTED]',
      tenants: 'visible',
    })
    expect(task?.uri).toBe(
      '/tenants?TENANT=[REDACTED]&tenant[0]=[REDACTED]&tenant[]=[REDACTED]&user[tenant]=[REDACTED]&tenants=visible',
    )
  })

  it('logs a failed request without URL secrets', async () => {
    const fields: Array<Record<string, unknown>> = []
    const logger = { warn: () => {}, error: (object: Record<string, unknown>) => fields.push(object) }
    const throwingIgnore = () => {
      throw new Error('ignore rule failed')
    }
    await app.close()
    app = await startApp({ logger, ignore: throwingIgnore })
    await sendRawTarget(app.port, 'http://ann:LOG-PASSWORD@127.0.0.1/logged#access_token=LOG-TOKEN')

    expect(fields.map((field) => field.path)).toEqual(['http://[REDACTED]@127.0.0.1/logged'])
    expect(JSON.stringify(fields)).not.toMatch(/LOG-PASSWORD|LOG-TOKEN/)
  })

  it('masks a fragment in the target', async () => {
    await sendRawTarget(app.port, '/callback#access_token=FRAGMENT-TOKEN&state=7')

    const task = await readOnly('/callback')
    expect(task?.params).toBeNull()
    expect(task?.uri).toBe('/callback#access_token=[REDACTED]&state=7')
    expect(JSON.stringify(task)).not.toContain('FRAGMENT-TOKEN')
  })

  it('keeps a fragment out of params', async () => {
    await sendRawTarget(app.port, '/callback?x=1#access_token=FRAGMENT-TOKEN')

    const task = await readOnly('/callback')
    expect(task?.params).toEqual({ x: '1' })
    expect(task?.uri).toBe('/callback?x=1#access_token=[REDACTED]')
    expect(JSON.stringify(task)).not.toContain('FRAGMENT-TOKEN')
  })

  it('masks an absolute-form password containing @', async () => {
    await sendRawTarget(app.port, 'http://ann:ABS-PASS@evil@127.0.0.1/absolute?token=ABS-TOKEN')

    const stored = await waitForPath(redis.client, '/absolute')
    const [task] = stored.pastTasks
    expect(task?.uri).toBe('http://[REDACTED]@127.0.0.1/absolute?token=[REDACTED]')
    expect(JSON.stringify(stored.pastTasks)).not.toMatch(/ABS-PASS|evil/)
  })
})
