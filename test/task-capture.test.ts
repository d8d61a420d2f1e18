import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  CaptureEncoder,
  captureRequest,
  captureResponse,
  normalizeIp,
  TRUNCATED_HEADERS_NAME,
  type CaptureSettings,
  type RequestFacts,
  type RequestPart,
  type ResponsePart,
} from '../src/task/capture'
import { createRedactionRules, DEFAULT_SIZE_LIMITS, REDACTED, TRUNCATED, type SizeLimits } from '../src/task/redact'
import { sendRequest } from './helpers/http'
import { formatRequest, openConnection } from './helpers/raw-http'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

const closers: Array<() => Promise<void>> = []

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

function settings(overrides: { limits?: Partial<SizeLimits>; captureHeaders?: boolean } = {}): CaptureSettings {
  return {
    captureHeaders: overrides.captureHeaders ?? true,
    rules: createRedactionRules(),
    limits: { ...DEFAULT_SIZE_LIMITS, ...overrides.limits },
  }
}

/** Starts a Node server on 127.0.0.1 that runs `handler` for every request. */
async function serve(handler: Handler): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Sends one request and returns what `captureRequest` made of it on the server. */
async function captureSent(
  path: string,
  headers: Array<[string, string]> = [],
  options: { settings?: CaptureSettings; facts?: RequestFacts } = {},
): Promise<RequestPart> {
  let captured: RequestPart | undefined
  const url = await serve((req, res) => {
    captured = captureRequest(req, options.settings ?? settings(), options.facts)
    res.end()
  })
  await sendRequest(`${url}${path}`, { headers })
  if (captured === undefined) throw new Error('the server saw no request')
  return captured
}

/** Lets `respond` handle one request and returns what `captureResponse` read when the response finished. */
async function captureAnswered(respond: Handler, captureSettings = settings()): Promise<ResponsePart> {
  let captured: ResponsePart | undefined
  const url = await serve((req, res) => {
    res.on('finish', () => {
      captured = captureResponse(res, captureSettings)
    })
    respond(req, res)
  })
  await sendRawRequest(url)
  if (captured === undefined) throw new Error('the response never finished')
  return captured
}

/**
 * Sends `GET /` with these header lines after `Host: 127.0.0.1` over a
 * plain socket and reads the response, which Node's client would reject
 * for a repeated Content-Length.
 */
async function sendRawRequest(url: string, headerLines: string[] = []): Promise<void> {
  const connection = await openConnection(Number(new URL(url).port))
  try {
    connection.write(formatRequest('GET', '/', headerLines))
    await connection.readResponses(1)
  } finally {
    connection.destroy()
  }
}

describe('captureRequest', () => {
  it('splits path and query', async () => {
    const part = await captureSent('/search?q=red+shoes&size=42&size=43&empty=')
    expect(part.method).toBe('GET')
    expect(part.path).toBe('/search')
    expect(part.params).toEqual({ q: 'red shoes', size: ['42', '43'], empty: '' })
    expect(part.uri).toBe('/search?q=red+shoes&size=42&size=43&empty=')
    expect(part.protocol).toBe('http')
    expect(part.client_ip_address).toBe('127.0.0.1')
  })

  it('leaves params null without a query', async () => {
    const part = await captureSent('/plain')
    expect(part.params).toBeNull()
    expect(part.uri).toBe('/plain')
  })

  it('keeps repeated headers in order', async () => {
    const part = await captureSent('/', [
      ['X-Trace', 'one'],
      ['Accept', 'text/plain'],
      ['X-Trace', 'two'],
    ])
    const traces = part.request_headers?.filter(([name]) => name === 'X-TRACE')
    expect(traces).toEqual([
      ['X-TRACE', 'one'],
      ['X-TRACE', 'two'],
    ])
    expect(part.request_headers).toContainEqual(['ACCEPT', 'text/plain'])
  })

  it('joins a repeated Host', async () => {
    let part: RequestPart | undefined
    const url = await serve((req, res) => {
      part = captureRequest(req, settings())
      res.end()
    })
    await sendRawRequest(url, ['X-Trace: one', 'host: second.example'])
    expect(part?.host).toBe('127.0.0.1')
    expect(part?.request_headers).toEqual([
      ['HOST', '127.0.0.1, second.example'],
      ['X-TRACE', 'one'],
    ])
  })

  it('masks secrets in headers, params and uri', async () => {
    const part = await captureSent('/login?user=ann&pass%77ord=hunter2&access_token=t0k', [
      ['Authorization', 'Basic YW5uOmh1bnRlcjI='],
      ['X-Upstream-Token', 'abc'],
    ])
    expect(part.request_headers).toContainEqual(['AUTHORIZATION', REDACTED])
    expect(part.request_headers).toContainEqual(['X-UPSTREAM-TOKEN', REDACTED])
    expect(part.params).toEqual({ user: 'ann', password: REDACTED, access_token: REDACTED })
    expect(part.uri).toBe(`/login?user=ann&pass%77ord=${REDACTED}&access_token=${REDACTED}`)
  })

  it('uses facts from the framework', async () => {
    const part = await captureSent('/inner', [], {
      facts: { clientIp: '::ffff:203.0.113.9', protocol: 'https', url: '/mounted/inner?x=1' },
    })
    expect(part.client_ip_address).toBe('203.0.113.9')
    expect(part.protocol).toBe('https')
    expect(part.path).toBe('/mounted/inner')
    expect(part.params).toEqual({ x: '1' })
  })

  it('skips headers when captureHeaders is false', async () => {
    const part = await captureSent('/', [['X-Trace', 'one']], { settings: settings({ captureHeaders: false }) })
    expect(part.request_headers).toBeNull()
  })

  it('caps the path and uri', async () => {
    const part = await captureSent(`/${'a'.repeat(100)}?q=1`, [], { settings: settings({ limits: { maxUrlLength: 20 } }) })
    expect(part.path).toBe(`/${'a'.repeat(19)}${TRUNCATED}`)
    expect(part.uri).toBe(`/${'a'.repeat(19)}${TRUNCATED}`)
  })

  it('caps header values', async () => {
    const part = await captureSent('/', [['X-Long', 'v'.repeat(50)]], {
      settings: settings({ limits: { maxHeaderValueLength: 10 } }),
    })
    expect(part.request_headers).toContainEqual(['X-LONG', `${'v'.repeat(10)}${TRUNCATED}`])
  })

  it('caps header and parameter names', async () => {
    const part = await captureSent(`/?${'n'.repeat(40)}=1`, [[`X-${'h'.repeat(300)}`, 'v']], {
      settings: settings({ limits: { maxUrlLength: 20, maxHeaderValueLength: 10 } }),
    })
    expect(Object.keys(part.params ?? {})).toEqual([`${'n'.repeat(20)}${TRUNCATED}`])
    expect(part.request_headers).toContainEqual([`X-${'H'.repeat(254)}${TRUNCATED}`, 'v'])
  })

  it('keeps names under a low value cap', async () => {
    const part = await captureSent('/', [['X-Request-Context', 'value-that-is-long']], {
      settings: settings({ limits: { maxHeaderValueLength: 10 } }),
    })
    expect(part.request_headers).toContainEqual(['X-REQUEST-CONTEXT', `value-that${TRUNCATED}`])
  })

  it('caps the number of headers', async () => {
    const headers: Array<[string, string]> = Array.from({ length: 10 }, (_, i) => [`X-H${i}`, String(i)])
    const part = await captureSent('/', headers, { settings: settings({ limits: { maxHeaders: 4 } }) })
    const pairs = part.request_headers ?? []
    expect(pairs).toHaveLength(5)
    // The client also sends Host and Connection, so 12 headers arrive and 8 are cut.
    expect(pairs[4]).toEqual([TRUNCATED_HEADERS_NAME.toUpperCase(), '8 headers'])
  })

  it('caps param values, repeats included', async () => {
    const part = await captureSent('/?a=1&a=2&a=3&b=4&c=5', [], { settings: settings({ limits: { maxParams: 3 } }) })
    expect(part.params).toEqual({ a: ['1', '2', '3'] })
  })

  it('caps params past empty pairs', async () => {
    const part = await captureSent('/?&&a=1&&b=%ZZ&&c=3&d=4', [], { settings: settings({ limits: { maxParams: 3 } }) })
    expect(part.params).toEqual({ a: '1', b: '%ZZ', c: '3' })
  })

  it('cuts a long query of malformed escapes', async () => {
    const query = `token=abc&${'%&'.repeat(7_500)}`
    const part = await captureSent(`/?${query}`, [], { settings: settings({ limits: { maxUrlLength: 100 } }) })
    expect(part.uri).toBe(`/?token=[REDACTED]&${'%&'.repeat(40)}%${TRUNCATED}`)
    expect(Object.keys(part.params ?? {})).toEqual(['token', '%'])
  })
})

describe('captureResponse', () => {
  it('reads status and headers as sent', async () => {
    const part = await captureAnswered((_req, res) => {
      res.setHeader('Content-Type', 'application/json')
      res.setHeader('Set-Cookie', ['a=1', 'b=2'])
      res.end('{}')
    })
    expect(part.status_code).toBe(200)
    expect(part.status_message).toBe('200 OK')
    expect(part.response_headers).toContainEqual(['Content-Type', 'application/json'])
    expect(part.response_headers?.filter(([name]) => name === 'Set-Cookie')).toEqual([
      ['Set-Cookie', REDACTED],
      ['Set-Cookie', REDACTED],
    ])
  })

  it('sees headers passed only to writeHead', async () => {
    const part = await captureAnswered((_req, res) => {
      res.writeHead(201, { 'Content-Type': 'text/plain', 'Content-Length': '2', 'X-Only-In-WriteHead': 'yes' })
      res.end('ok')
    })
    expect(part.status_code).toBe(201)
    expect(part.response_headers).toContainEqual(['X-Only-In-WriteHead', 'yes'])
    expect(part.response_headers).toContainEqual(['Content-Length', '2'])
  })

  it.each([
    ['setHeader with a list', (res: ServerResponse) => res.setHeader('Content-Length', ['2', '2'])],
    ['writeHead with two lines', (res: ServerResponse) => res.writeHead(200, ['Content-Length', '2', 'content-length', '2'])],
  ])('stores one Content-Length from %s', async (_case, setLength) => {
    const part = await captureAnswered((_req, res) => {
      setLength(res)
      res.end('ok')
    })
    const lengths = part.response_headers?.filter(([name]) => name.toLowerCase() === 'content-length')
    expect(lengths).toEqual([['Content-Length', '2']])
  })

  it('reads one Content-Length set before sending', async () => {
    let part: ResponsePart | undefined
    const url = await serve((_req, res) => {
      res.setHeader('Content-Length', ['2', '2'])
      res.setHeader('X-Trace', ['one', 'two'])
      part = captureResponse(res, settings())
      res.end('ok')
    })
    await sendRawRequest(url)
    expect(part?.response_headers).toEqual([
      ['Content-Length', '2'],
      ['X-Trace', 'one'],
      ['X-Trace', 'two'],
    ])
  })

  it('keeps a custom reason phrase', async () => {
    const part = await captureAnswered((_req, res) => {
      res.writeHead(299, 'Mostly Fine')
      res.end()
    })
    expect(part.status_code).toBe(299)
    expect(part.status_message).toBe('299 Mostly Fine')
  })

  it('caps the number of response headers', async () => {
    const part = await captureAnswered(
      (_req, res) => {
        for (let i = 0; i < 6; i++) res.setHeader(`X-H${i}`, String(i))
        res.end()
      },
      settings({ limits: { maxHeaders: 3 } }),
    )
    expect(part.response_headers?.slice(0, 3)).toEqual([
      ['X-H0', '0'],
      ['X-H1', '1'],
      ['X-H2', '2'],
    ])
    // Node adds Date, Connection and Content-Length (or Transfer-Encoding) after the app's six.
    expect(part.response_headers?.[3]?.[0]).toBe(TRUNCATED_HEADERS_NAME)
    expect(part.response_headers?.[3]?.[1]).toMatch(/^\d+ headers$/)
    expect(part.response_headers).toHaveLength(4)
  })

  it('reads set headers before sending', async () => {
    let part: ResponsePart | undefined
    const url = await serve((_req, res) => {
      res.statusCode = 404
      res.setHeader('X-Early', 'yes')
      part = captureResponse(res, settings())
      res.end()
    })
    await sendRequest(url)
    expect(part).toEqual({ status_code: 404, status_message: '404 Not Found', response_headers: [['X-Early', 'yes']] })
  })

  it('skips headers when captureHeaders is false', async () => {
    const part = await captureAnswered((_req, res) => res.end(), settings({ captureHeaders: false }))
    expect(part.response_headers).toBeNull()
    expect(part.status_code).toBe(200)
  })

  // Tripwire: captureResponse relies on Node's internal `_header` string.
  it('finds Node keeping the header block', async () => {
    let block: unknown
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'X-A': '1' })
      block = (res as ServerResponse & { _header?: unknown })._header
      res.end()
    })
    await sendRequest(url)
    expect(typeof block).toBe('string')
    expect(block).toMatch(/^HTTP\/1\.1 200 OK\r\nX-A: 1\r\n[\s\S]*\r\n\r\n$/)
  })
})

describe('normalizeIp', () => {
  it.each([
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['10.0.0.1', '10.0.0.1'],
    ['::1', '::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['::ffff:abcd', '::ffff:abcd'],
    ['', null],
    [undefined, null],
  ])('turns %j into %j', (input, expected) => {
    expect(normalizeIp(input)).toBe(expected)
  })
})

/** Creates a request as `CaptureEncoder` reads it, without a server. */
function fakeRequest(rawHeaders: string[], headers: Record<string, string> = {}): IncomingMessage {
  return {
    url: '/p',
    method: 'GET',
    rawHeaders,
    headers,
    socket: { remoteAddress: '10.0.0.9' },
  } as unknown as IncomingMessage
}

/** Parses the request part an encoder writes. */
function encodeParsed(encoder: CaptureEncoder, req: IncomingMessage): RequestPart {
  return JSON.parse(`{${encoder.encodeRequest(req)}}`) as RequestPart
}

describe('CaptureEncoder', () => {
  it('follows a header value that changes', () => {
    const encoder = new CaptureEncoder(settings())
    const values = ['one', 'one', 'two', 'one', 'three"quoted"']
    for (const value of values) {
      const part = encodeParsed(encoder, fakeRequest(['X-Trace', value, 'Cookie', `id=${value}`]))
      expect(part.request_headers).toEqual([
        ['X-TRACE', value],
        ['COOKIE', REDACTED],
      ])
    }
  })

  it('follows headers that change places', () => {
    const encoder = new CaptureEncoder(settings())
    const orders = [
      ['X-A', 'a', 'X-B', 'b', 'Authorization', 'secret'],
      ['X-B', 'b', 'Authorization', 'secret', 'X-A', 'a'],
      ['Authorization', 'secret', 'X-A', 'a2'],
    ]
    const expected = [
      [['X-A', 'a'], ['X-B', 'b'], ['AUTHORIZATION', REDACTED]],
      [['X-B', 'b'], ['AUTHORIZATION', REDACTED], ['X-A', 'a']],
      [['AUTHORIZATION', REDACTED], ['X-A', 'a2']],
    ]
    orders.forEach((rawHeaders, index) => {
      expect(encodeParsed(encoder, fakeRequest(rawHeaders)).request_headers).toEqual(expected[index])
    })
  })

  it('follows response headers that change places', () => {
    const encoder = new CaptureEncoder(settings())
    const blocks = [
      'HTTP/1.1 200 OK\r\nX-A: 1\r\nSet-Cookie: s=1\r\nX-Long-Name: 2\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX-Long-Name: 2\r\nX-A: 1\r\nX-AB: 3\r\n\r\n',
      'HTTP/1.1 404 Not Found\r\nX-AB: 4\r\n\r\n',
    ]
    const expected = [
      [['X-A', '1'], ['Set-Cookie', REDACTED], ['X-Long-Name', '2']],
      [['X-Long-Name', '2'], ['X-A', '1'], ['X-AB', '3']],
      [['X-AB', '4']],
    ]
    blocks.forEach((block, index) => {
      const res = { _header: block } as unknown as ServerResponse
      const part = JSON.parse(`{${encoder.encodeResponse(res)}}`) as ResponsePart
      expect(part.response_headers).toEqual(expected[index])
    })
    expect(JSON.parse(`{${encoder.encodeResponse({ _header: blocks[2] } as unknown as ServerResponse)}}`).status_code).toBe(404)
  })

  it('encodes names past its cache', () => {
    const encoder = new CaptureEncoder(settings())
    for (let round = 0; round < 12; round++) {
      const rawHeaders: string[] = []
      for (let i = 0; i < 60; i++) rawHeaders.push(`X-R${round}-H${i}`, `${round}.${i}`)
      rawHeaders.push('X-Api-Key', 'k-123')
      const pairs = encodeParsed(encoder, fakeRequest(rawHeaders)).request_headers ?? []
      expect(pairs).toHaveLength(61)
      expect(pairs[59]).toEqual([`X-R${round}-H59`, `${round}.59`])
      expect(pairs[60]).toEqual(['X-API-KEY', REDACTED])
    }
  })

  it('joins single-value repeats between plain requests', () => {
    const encoder = new CaptureEncoder(settings())
    const plain = ['User-Agent', 'agent/1', 'X-Forwarded-For', '203.0.113.7']
    const repeated = ['User-Agent', 'agent/1', 'X-Forwarded-For', '203.0.113.7', 'X-Forwarded-For', '10.0.0.1']
    const expectedPlain = [
      ['USER-AGENT', 'agent/1'],
      ['X-FORWARDED-FOR', '203.0.113.7'],
    ]
    const expectedRepeated = [
      ['USER-AGENT', 'agent/1'],
      ['X-FORWARDED-FOR', '203.0.113.7, 10.0.0.1'],
    ]
    for (const [rawHeaders, expected] of [
      [plain, expectedPlain],
      [repeated, expectedRepeated],
      [plain, expectedPlain],
      [repeated, expectedRepeated],
    ] as const) {
      expect(encodeParsed(encoder, fakeRequest([...rawHeaders])).request_headers).toEqual(expected)
    }
  })

  it('keeps the first of differing Content-Length values', () => {
    const encoder = new CaptureEncoder(settings())
    const block = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\ncontent-length:  3 \r\n\r\n'
    const part = JSON.parse(`{${encoder.encodeResponse({ _header: block } as unknown as ServerResponse)}}`) as ResponsePart
    expect(part.response_headers).toEqual([
      ['Content-Length', '2'],
      ['X-A', '1'],
    ])
  })

  it('leaves empty values out of a joined header', () => {
    const encoder = new CaptureEncoder(settings())
    const rawHeaders = ['X-Forwarded-For', '', 'User-Agent', 'a', 'X-Forwarded-For', '203.0.113.7']
    expect(encodeParsed(encoder, fakeRequest(rawHeaders)).request_headers).toEqual([
      ['X-FORWARDED-FOR', '203.0.113.7'],
      ['USER-AGENT', 'a'],
    ])
  })

  it('joins a repeat at the header cap', () => {
    const encoder = new CaptureEncoder(settings({ limits: { maxHeaders: 2 } }))
    const rawHeaders = ['User-Agent', 'a', 'X-A', '1', 'User-Agent', 'b', 'X-B', '2', 'X-C', '3']
    expect(encodeParsed(encoder, fakeRequest(rawHeaders)).request_headers).toEqual([
      ['USER-AGENT', 'a, b'],
      ['X-A', '1'],
      [TRUNCATED_HEADERS_NAME.toUpperCase(), '2 headers'],
    ])
  })

  it('keeps values that need escaping', () => {
    const encoder = new CaptureEncoder(settings())
    const value = 'a"b\\c\u0001d \u00e9 \ud800'
    const part = encodeParsed(encoder, fakeRequest(['X-Odd', value]))
    expect(part.request_headers).toEqual([['X-ODD', value]])
  })

  it('reads Host from the raw headers', () => {
    const encoder = new CaptureEncoder(settings())
    const part = encodeParsed(encoder, fakeRequest(['host', 'raw.example:8080'], { host: 'other.example' }))
    expect(part.host).toBe('raw.example:8080')
  })

  it('reads Host past maxHeaders from req.headers', () => {
    const encoder = new CaptureEncoder(settings({ limits: { maxHeaders: 1 } }))
    const req = fakeRequest(['X-A', '1', 'Host', 'late.example'], { host: 'late.example' })
    const part = encodeParsed(encoder, req)
    expect(part.host).toBe('late.example')
    expect(part.request_headers).toEqual([
      ['X-A', '1'],
      [TRUNCATED_HEADERS_NAME.toUpperCase(), '1 headers'],
    ])
  })

  it('leaves host null without a Host header', () => {
    const encoder = new CaptureEncoder(settings())
    expect(encodeParsed(encoder, fakeRequest(['X-A', '1'])).host).toBeNull()
  })

  it('skips the raw headers when captureHeaders is false', () => {
    const encoder = new CaptureEncoder(settings({ captureHeaders: false }))
    const req = { ...fakeRequest([], { host: 'h.example' }) } as IncomingMessage
    Object.defineProperty(req, 'rawHeaders', {
      get: () => {
        throw new Error('rawHeaders read with captureHeaders false')
      },
    })
    const part = encodeParsed(encoder, req)
    expect(part.request_headers).toBeNull()
    expect(part.host).toBe('h.example')
  })
})
