/**
 * A tracker URL that is invalid or points at no server: one line on
 * standard error naming the URL (password masked), exit code 1, no stack.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findProtocolMismatch } from '../src/trackers/protocol-mismatch'
import { maskUrl } from '../src/util/mask-url'
import { findTlsBlocker, makeCertificates } from './helpers/certificates'
import { runCli, type CliResult } from './helpers/cli'
import { findFreePort, startRedis, type TestRedis } from './helpers/redis-server'

const GOOD_KEY = 'good-key-0123456789abcdef'
const REDIS_PASSWORD = 'right-pass-4711'

/** Commands that read the tasks of any tracker, Redis or http(s)://. */
const READING_COMMANDS = ['recent', 'live', 'tail', 'check']

/** Commands that write to a Redis tracker or list its key prefixes, and reject http(s)://. */
const REDIS_ONLY_COMMANDS = ['clear', 'prune', 'prefixes']

function countOccurrences(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'gi'))?.length ?? 0
}

/** Lines of a Node stack trace. */
const STACK_LINE = /^\s+at /m

/** Checks a one-line error without a stack trace, and its exit code: 1 at run time, 2 for a usage error. */
function expectOneLineError(
  result: { code: number | null; stdout: string; stderr: string },
  exitCode: 1 | 2 = 1,
): void {
  expect(result.code).toBe(exitCode)
  expect(result.stdout).toBe('')
  expect(result.stderr.endsWith('\n')).toBe(true)
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
  expect(result.stderr).not.toMatch(STACK_LINE)
}

/**
 * Starts `server` on a free port of 127.0.0.1, runs `recent` with the
 * redis:// URL of that port, and closes the server. The server must read
 * from its sockets, or it never notices the client close and close() never finishes.
 */
async function runRecentAt(server: TcpServer): Promise<{ url: string; result: CliResult }> {
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen))
  try {
    const url = `redis://127.0.0.1:${(server.address() as AddressInfo).port}`
    const result = await runCli(['recent', '--tracker-url', url], { timeoutMs: 20_000 })
    return { url, result }
  } finally {
    await new Promise((resolveClose) => server.close(resolveClose))
  }
}

describe('tracker URL errors', () => {
  it('reports an unreachable Redis', async () => {
    const port = await findFreePort()
    const url = `redis://127.0.0.1:${port}`
    for (const command of ['recent', 'live']) {
      const started = Date.now()
      const result = await runCli([command, '--tracker-url', url])
      expectOneLineError(result)
      expect(result.stderr).toContain(`web-top-cli: Cannot connect to the tracker at ${url}: connect ECONNREFUSED`)
      expect(result.stderr).toContain('Check that Redis is running there')
      expect(Date.now() - started).toBeLessThan(5_000)
    }
  })

  it('names a Redis without TLS at rediss://', async () => {
    const plain = await startRedis()
    try {
      const url = `rediss://127.0.0.1:${plain.port}`
      const result = await runCli(['recent', '--tracker-url', url], { timeoutMs: 10_000 })

      expectOneLineError(result)
      expect(result.stderr).toContain(
        `web-top-cli: Cannot connect to the tracker at ${url}: the TLS handshake timed out, ` +
          'and the server replies to a PING without TLS on that port.',
      )
      expect(result.stderr).toContain('The port has no TLS: use redis:// in place of rediss://')
      expect(result.stderr).not.toContain('Check that Redis is running')
    } finally {
      await plain.close()
    }
  })

  it('names a single Redis at a redis+cluster:// URL', async () => {
    const plain = await startRedis()
    try {
      const url = `redis+cluster://127.0.0.1:${plain.port}`
      const result = await runCli(['recent', '--tracker-url', url, '--prefix', '{shop}:'], { timeoutMs: 15_000 })

      expectOneLineError(result)
      expect(result.stderr).toContain('cluster support disabled')
      expect(result.stderr).toContain(
        'The server is a single Redis, not a Cluster node: read it with a redis://host:port URL (rediss:// for TLS)',
      )
      expect(result.stderr).not.toContain('Check that Redis is running')
    } finally {
      await plain.close()
    }
  })

  it('names no TLS when nothing listens at a rediss:// URL', async () => {
    const port = await findFreePort()
    const result = await runCli(['recent', '--tracker-url', `rediss://127.0.0.1:${port}`])

    expectOneLineError(result)
    expect(result.stderr).toContain('connect ECONNREFUSED')
    expect(result.stderr).not.toContain('TLS')
  })

  it('names no TLS for a redis:// URL', async () => {
    const result = await runCli(['recent', '--tracker-url', `redis://127.0.0.1:${await findFreePort()}`])

    expectOneLineError(result)
    expect(result.stderr).not.toContain('TLS')
  })

  it('reports an unreachable Sentinel', async () => {
    const port = await findFreePort()
    const url = `redis+sentinel://:secret@127.0.0.1:${port}/mymaster`
    const shownUrl = `redis+sentinel://:***@127.0.0.1:${port}/mymaster`
    for (const command of ['recent', 'check']) {
      const started = Date.now()
      const result = await runCli([command, '--tracker-url', url], { timeoutMs: 10_000 })
      expectOneLineError(result)
      expect(result.stderr).toContain(`web-top-cli: Cannot connect to the tracker at ${shownUrl}: `)
      expect(result.stderr).toContain('All sentinels are unreachable')
      expect(result.stderr).not.toContain('secret')
      expect(Date.now() - started).toBeLessThan(6_000)
    }
  })

  it('reports an unreachable cluster', async () => {
    const port = await findFreePort()
    const url = `redis+cluster://127.0.0.1:${port}`
    const started = Date.now()
    const result = await runCli(['recent', '--prefix', '{shop}:', '--tracker-url', url], { timeoutMs: 10_000 })
    expectOneLineError(result)
    expect(result.stderr).toContain(`web-top-cli: Cannot connect to the tracker at ${url}: `)
    expect(Date.now() - started).toBeLessThan(6_000)
  })

  it('masks the password of an unreachable Redis', async () => {
    const port = await findFreePort()
    const result = await runCli(['recent', '--tracker-url', `redis://:secret@127.0.0.1:${port}`])
    expectOneLineError(result)
    expect(result.stderr).toContain(`redis://:***@127.0.0.1:${port}`)
    expect(result.stderr).not.toContain('secret')
  })

  it('masks the password from the environment', async () => {
    const port = await findFreePort()
    const result = await runCli(
      ['recent'],
      { env: { TOP_TRACKER_URL: `redis://user:hunter2@127.0.0.1:${port}/3` } },
    )
    expectOneLineError(result)
    expect(result.stderr).toContain(`redis://user:***@127.0.0.1:${port}/3`)
    expect(result.stderr).not.toContain('hunter2')
  })

  it('rejects an unsupported scheme', async () => {
    const result = await runCli(['recent', '--tracker-url', 'ftp://x'])
    expectOneLineError(result, 2)
    expect(result.stderr).toContain('web-top-cli: Invalid tracker URL "ftp://x/"')
    expect(result.stderr).toContain('the scheme "ftp:" is not supported')
  })

  it('names a port out of range', async () => {
    const result = await runCli(['recent', '--tracker-url', 'redis://127.0.0.1:99999'])
    expectOneLineError(result, 2)
    expect(result.stderr).toContain('web-top-cli: Invalid tracker URL "redis://127.0.0.1:99999": the port 99999 is above 65535;')
  })

  it('suggests redis:// for a host and port', async () => {
    const result = await runCli(['recent', '--tracker-url', 'localhost:6390'])
    expectOneLineError(result, 2)
    expect(result.stderr).toContain('the scheme "localhost:" is not supported; write redis://localhost:6390, or use redis://')
  })

  it('rejects invalid URL syntax', async () => {
    for (const url of ['redis://[bad', 'redis://127.0.0.1:notaport', 'not a url']) {
      const result = await runCli(['recent', '--tracker-url', url])
      expectOneLineError(result, 2)
      expect(result.stderr).toContain('Invalid tracker URL')
    }
  })

  it.each(['redis://user:p%zz@127.0.0.1:1', 'redis+cluster://:p%zz@127.0.0.1:1', 'redis+sentinel://127.0.0.1:1/m%zz'])(
    'rejects an invalid percent escape in %s',
    async (url) => {
      const result = await runCli(['recent', '--tracker-url', url])
      expectOneLineError(result, 2)
      expect(result.stderr).toContain('web-top-cli: Invalid tracker URL')
      expect(result.stderr).toContain('has an invalid percent escape; write a % in it as %25')
      expect(result.stderr).not.toContain('p%zz')
    },
  )

  it('names leading whitespace in a URL', async () => {
    const result = await runCli(['recent'], { env: { TOP_TRACKER_URL: ' redis://:topsecret@127.0.0.1:1' } })
    expectOneLineError(result, 2)
    expect(result.stderr).toContain('Invalid tracker URL " redis://:***@127.0.0.1:1": it starts with whitespace; remove it')
    expect(result.stderr).not.toContain('no scheme')
    expect(result.stderr).not.toContain('topsecret')
  })

  // An app's recorder rejects these values, so the CLI must not read the Redis that the URL names.
  it('rejects trailing whitespace like the recorder', async () => {
    const redis = await startRedis()
    try {
      const onCommandLine = await runCli(['check', '--tracker-url', `${redis.url} `])
      expectOneLineError(onCommandLine, 2)
      expect(onCommandLine.stderr).toBe(`web-top-cli: Invalid tracker URL "${redis.url} ": it ends with whitespace; remove it\n`)

      for (const [whitespace, shown] of [['\n', '\\n'], ['\t', '\\t'], [' ', ' ']]) {
        const fromEnvironment = await runCli(['recent'], { env: { TOP_TRACKER_URL: `${redis.url}${whitespace}` } })
        expectOneLineError(fromEnvironment, 2)
        expect(fromEnvironment.stderr).toBe(
          `web-top-cli: Invalid tracker URL "${redis.url}${shown}": it ends with whitespace; remove it ` +
            '(from the TOP_TRACKER_URL environment variable)\n',
        )
      }

      const trimmed = await runCli(['check', '--tracker-url', redis.url])
      expect(trimmed.code, trimmed.stderr).toBe(0)
    } finally {
      await redis.close()
    }
  })

  it('masks the password in a URL with trailing whitespace', async () => {
    const result = await runCli(['recent'], { env: { TOP_TRACKER_URL: 'redis://:topsecret@127.0.0.1:1 ' } })
    expectOneLineError(result, 2)
    expect(result.stderr).toContain('Invalid tracker URL "redis://:***@127.0.0.1:1 ": it ends with whitespace')
    expect(result.stderr).not.toContain('topsecret')
  })

  it('masks the password of an invalid URL', async () => {
    const result = await runCli(['live', '--tracker-url', 'redis://:topsecret@[bad'])
    expectOneLineError(result, 2)
    expect(result.stderr).not.toContain('topsecret')
  })
})

describe('HTTP server at a Redis URL', () => {
  let server: Server
  let port: number

  beforeAll(async () => {
    server = createServer((_req, res) => res.end('not Redis'))
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen))
    port = (server.address() as AddressInfo).port
  })

  afterAll(async () => {
    await new Promise((resolveClose) => server?.close(resolveClose))
  })

  it.each(['recent', 'live', 'check'])('%s says the port is HTTP', async (command) => {
    const url = `redis://127.0.0.1:${port}`
    const started = Date.now()
    const result = await runCli([command, '--tracker-url', url])

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `web-top-cli: Cannot connect to the tracker at ${url}: the server replied "HTTP/1.1 400 Bad Request", ` +
        'as an HTTP server does, not Redis.',
    )
    expect(result.stderr).toContain('Check the port in the URL: an HTTP server listens there, not Redis.')
    expect(result.stderr).toContain('http://127.0.0.1:3000/web-top')
    expect(result.stderr).not.toContain('Please report this')
    expect(result.stderr).not.toContain('Check that Redis is running')
    // The server replies at once, so the CLI fails on that reply rather than on the 3 s connect timeout.
    expect(result.stderr).not.toMatch(/timed out|ETIMEDOUT/)
    expect(Date.now() - started).toBeLessThan(15_000)
  })

  it('names the cluster seed that is HTTP', async () => {
    const url = `redis+cluster://127.0.0.1:${port}`
    const result = await runCli(['recent', '--tracker-url', url, '--prefix', '{shop}:'], { timeoutMs: 10_000 })

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `Cannot connect to the tracker at ${url}: the seed node 127.0.0.1:${port} failed: ` +
        'the server replied "HTTP/1.1 400 Bad Request", as an HTTP server does, not Redis.',
    )
    expect(result.stderr).toContain('Check the port in the URL')
    expect(result.stderr).not.toContain('Failed to refresh slots cache')
  })

  it('rediss:// says the port has no TLS', async () => {
    const url = `rediss://127.0.0.1:${port}`
    const result = await runCli(['recent', '--tracker-url', url])

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `Cannot connect to the tracker at ${url}: the server replied to the TLS handshake without TLS ` +
        '(ERR_SSL_WRONG_VERSION_NUMBER).',
    )
    expect(result.stderr).toContain('The port has no TLS: use redis:// if the server there is Redis without TLS')
    expect(result.stderr).not.toContain('ssl3_get_record')
  })
})

describe('other server at a Redis URL', () => {
  it('quotes the first line it sent', async () => {
    // Like an SSH server, it sends its banner first.
    const server = createTcpServer((socket) => socket.resume().end('SSH-2.0-OpenSSH_9.6\r\n'))
    const { url, result } = await runRecentAt(server)

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `Cannot connect to the tracker at ${url}: the server replied "SSH-2.0-OpenSSH_9.6", ` +
        'which is not the Redis protocol.',
    )
    expect(result.stderr).toContain('Check the host and port in the URL: a server of another kind listens there')
  })

  it('shows the first bytes of a binary reply in hex', async () => {
    // Like a server of a binary protocol, it sends a header first; the text after the newline is not shown.
    const header = Buffer.from([0x00, 0x01, 0xff, 0x80, 0x1b, 0x02, 0x03, 0x04, 0x05, 0x06])
    const server = createTcpServer((socket) => socket.resume().end(Buffer.concat([header, Buffer.from('\nsecret text')])))
    const { url, result } = await runRecentAt(server)

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `Cannot connect to the tracker at ${url}: the server replied with binary data ` +
        '(0x00 0x01 …), which is not the Redis protocol.',
    )
    expect(result.stderr).toContain('Check the host and port in the URL: a server of another kind listens there')
    expect(result.stderr).not.toContain('Please report this')
    expect(result.stderr).not.toContain('secret')
  })

  it('shows no password bytes that the server echoes in binary', async () => {
    // The server sends a NUL, then the bytes above 0x7f that it received, as the password äöü is sent in AUTH.
    const server = createTcpServer((socket) => {
      socket.on('error', () => undefined)
      socket.once('data', (data: Buffer) => {
        const high = [...data].filter((byte) => byte >= 0x80)
        socket.end(Buffer.concat([Buffer.from([0x00]), Buffer.from(high), Buffer.from('\r\n')]))
      })
    })
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen))
    try {
      const port = (server.address() as AddressInfo).port
      const result = await runCli(['recent', '--tracker-url', `redis://:%C3%A4%C3%B6%C3%BC@127.0.0.1:${port}`], {
        timeoutMs: 20_000,
      })

      expectOneLineError(result)
      expect(result.stderr).toContain('the server replied with binary data (0x00 …), which is not the Redis protocol.')
      expect(result.stderr).not.toContain('0xc3')
    } finally {
      await new Promise((resolveClose) => server.close(resolveClose))
    }
  })
})

describe('server that closes at once at a Redis URL', () => {
  it('says the server closed without a reply', async () => {
    // The server closes each connection at once, so the client gets no error and no reply.
    const server = createTcpServer((socket) => {
      socket.on('error', () => undefined)
      socket.resume().end()
    })
    const { url, result } = await runRecentAt(server)

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `Cannot connect to the tracker at ${url}: the server accepted the connection and closed it without a reply.`,
    )
    expect(result.stderr).toContain('Check that the port in the URL is the port of a Redis server')
    expect(result.stderr).not.toContain('did not reply within')
    expect(result.stderr).not.toContain('TLS')
  })
})

describe('Redis at its maxclients', () => {
  it('quotes the error and names the setting', async () => {
    // The test Redis's own client takes the only connection that maxclients allows, once it has connected.
    const full = await startRedis(['--maxclients', '1'])
    try {
      expect(await full.client.ping()).toBe('PONG')
      const result = await runCli(['recent', '--tracker-url', full.url], { timeoutMs: 20_000 })

      expectOneLineError(result)
      expect(result.stderr).toContain(
        `Cannot connect to the tracker at ${full.url}: the server closed the connection with the error ` +
          '"ERR max number of clients reached".',
      )
      expect(result.stderr).toContain('raise maxclients')
    } finally {
      await full.close()
    }
  })
})

describe('Redis at its maxmemory', () => {
  it('names maxmemory, not the ACL', async () => {
    const full = await startRedis()
    try {
      await full.client.config('SET', 'maxmemory', '1')
      const result = await runCli(['recent', '--tracker-url', full.url], { timeoutMs: 20_000 })

      expectOneLineError(result)
      expect(result.stderr).toContain('OOM command not allowed')
      expect(result.stderr).toContain('Redis is at its maxmemory')
      expect(result.stderr).not.toContain('ACL')
    } finally {
      await full.client.config('SET', 'maxmemory', '0')
      await full.close()
    }
  })
})

const tlsBlocker = findTlsBlocker()
if (tlsBlocker !== undefined) console.warn(`Skipping the TLS connection error tests: ${tlsBlocker}`)

describe.skipIf(tlsBlocker !== undefined)('Redis with TLS only', () => {
  let dir: string
  let redis: TestRedis
  let tlsPort: number
  let caFile: string

  /** Starts a Redis server with TLS on a port of its own and `tlsSettings` added; returns it and that port. */
  async function startTlsRedis(tlsSettings: string[]): Promise<{ server: TestRedis; port: number }> {
    // Another process can take the free port before Redis binds it, so a failed start is tried once more on a new port.
    for (let attempt = 1; ; attempt++) {
      const port = await findFreePort()
      try {
        // The plain port of startRedis stays for its own client; the tests use the TLS port.
        const server = await startRedis([
          '--tls-port', String(port),
          '--tls-cert-file', join(dir, 'server.crt'),
          '--tls-key-file', join(dir, 'server.key'),
          '--tls-ca-cert-file', caFile,
          ...tlsSettings,
        ])
        return { server, port }
      } catch (error) {
        if (attempt >= 2) throw error
      }
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'web-top-cli-tls-'))
    caFile = makeCertificates(dir)
    const started = await startTlsRedis(['--tls-auth-clients', 'no'])
    redis = started.server
    tlsPort = started.port
  })

  afterAll(async () => {
    await redis?.close()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('redis:// says the port expects TLS', async () => {
    const url = `redis://127.0.0.1:${tlsPort}`
    const result = await runCli(['recent', '--tracker-url', url])

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `Cannot connect to the tracker at ${url}: the server closed the connection, ` +
        'and it completes a TLS handshake on that port.',
    )
    expect(result.stderr).toContain('The port expects TLS: use rediss:// in place of redis://')
    expect(result.stderr).not.toContain('ECONNRESET')
  })

  it('redis:// says an HTTPS port expects TLS', async () => {
    // Node's HTTPS server closes a connection that does not start with a TLS handshake, and sends nothing.
    const server = createHttpsServer(
      { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')) },
      (_req, res) => res.end('not Redis'),
    )
    const { url, result } = await runRecentAt(server)

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `Cannot connect to the tracker at ${url}: the server closed the connection, ` +
        'and it completes a TLS handshake on that port.',
    )
    expect(result.stderr).toContain('The port expects TLS: use rediss:// in place of redis://')
    expect(result.stderr).not.toContain('did not reply within')
  })

  it.each(['recent', 'check'])('%s names NODE_EXTRA_CA_CERTS for an untrusted CA', async (command) => {
    const url = `rediss://127.0.0.1:${tlsPort}`
    const result = await runCli([command, '--tracker-url', url])

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `Cannot connect to the tracker at ${url}: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN).`,
    )
    expect(result.stderr).toContain(
      "Node does not trust the server's certificate: set NODE_EXTRA_CA_CERTS to the PEM file of the certificate authority",
    )
    expect(result.stderr).not.toContain('without TLS')
  })

  it('names NODE_EXTRA_CA_CERTS for a TLS cluster seed', async () => {
    const url = `rediss+cluster://127.0.0.1:${tlsPort}`
    const result = await runCli(['check', '--tracker-url', url, '--prefix', '{shop}:'], { timeoutMs: 10_000 })

    expectOneLineError(result)
    expect(result.stderr).toContain(
      `Cannot connect to the tracker at ${url}: the seed node 127.0.0.1:${tlsPort} failed: ` +
        'self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN).',
    )
    expect(result.stderr).toContain("Node does not trust the server's certificate: set NODE_EXTRA_CA_CERTS")
  })

  it('reads once NODE_EXTRA_CA_CERTS names the CA', async () => {
    const url = `rediss://127.0.0.1:${tlsPort}`
    const result = await runCli(['check', '--tracker-url', url], { env: { NODE_EXTRA_CA_CERTS: caFile } })

    expect(result.stdout).toMatch(/^OK: /)
    expect(result.code).toBe(0)
  })
  it('says the server requires a client certificate', async () => {
    // tls-auth-clients is yes by default.
    const { server, port } = await startTlsRedis([])
    try {
      const url = `rediss://127.0.0.1:${port}`
      const result = await runCli(['recent', '--tracker-url', url], { env: { NODE_EXTRA_CA_CERTS: caFile } })

      expectOneLineError(result)
      expect(result.stderr).toContain(
        `Cannot connect to the tracker at ${url}: the server requires a client certificate ` +
          '(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED).',
      )
      expect(result.stderr).toContain('set tls-auth-clients to no or optional')
    } finally {
      await server.close()
    }
  })

  it('finds the client certificate behind a reset connection', async () => {
    // TLS 1.3 sends the server's alert after the handshake, so a client that
    // writes at once may get only ECONNRESET, as a loaded machine showed.
    const { server, port } = await startTlsRedis([])
    try {
      const reset = Object.assign(new Error('write ECONNRESET'), { code: 'ECONNRESET' })
      const mismatch = await findProtocolMismatch(`rediss://127.0.0.1:${port}`, reset)
      expect(mismatch?.reason).toBe('the server requires a client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED)')
      expect(mismatch?.hint).toContain('set tls-auth-clients to no or optional')
    } finally {
      await server.close()
    }
  })

  it('names NODE_EXTRA_CA_CERTS for an https:// tracker', async () => {
    const key = readFileSync(join(dir, 'server.key'))
    const cert = readFileSync(join(dir, 'server.crt'))
    const server = createHttpsServer({ key, cert }, (_req, res) => res.end('[]'))
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen))
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/web-top`
      const result = await runCli(['recent', '--tracker-url', url, '--api-key', GOOD_KEY])

      expectOneLineError(result)
      expect(result.stderr).toContain(`Cannot connect to ${url} (UNABLE_TO_VERIFY_LEAF_SIGNATURE).`)
      expect(result.stderr).toContain("Node does not trust the server's certificate: set NODE_EXTRA_CA_CERTS")
      expect(result.stderr).not.toContain('Check that the app is running')
    } finally {
      await new Promise((resolveClose) => server.close(resolveClose))
    }
  })

  it('names a failed TLS handshake', async () => {
    // Node 20 accepts TLS 1.2 and 1.3 only.
    const { server, port } = await startTlsRedis(['--tls-auth-clients', 'no', '--tls-protocols', 'TLSv1.1'])
    try {
      const url = `rediss://127.0.0.1:${port}`
      const result = await runCli(['recent', '--tracker-url', url], { env: { NODE_EXTRA_CA_CERTS: caFile } })

      expectOneLineError(result)
      expect(result.stderr).toMatch(/: the TLS handshake failed: [a-z0-9 ]+ \(ERR_SSL_[A-Z0-9_]+\)\. /)
      expect(result.stderr).toContain('Check the TLS settings of the server, such as tls-protocols')
      expect(result.stderr).not.toContain('SSL routines')
    } finally {
      await server.close()
    }
  })
})

describe('maskUrl', () => {
  it.each([
    ['redis://:hunter2@127.0.0.1:6379/2', 'redis://:***@127.0.0.1:6379/2'],
    ['redis://user:hunter2@127.0.0.1:6379', 'redis://user:***@127.0.0.1:6379'],
    ['redis://127.0.0.1:6379?password=hunter2&db=1', 'redis://127.0.0.1:6379?password=***&db=1'],
    ['http://127.0.0.1:3000/web-top?api-key=k3y-value', 'http://127.0.0.1:3000/web-top?api-key=***'],
    ['http://127.0.0.1:3000/web-top?x=1&api_key=k3y&token=t0k', 'http://127.0.0.1:3000/web-top?x=1&api_key=***&token=***'],
    ['https://user:pw@example.test/web-top?apiKey=k3y', 'https://user:***@example.test/web-top?apiKey=***'],
    ['redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001', 'redis+cluster://:***@127.0.0.1:7000,127.0.0.1:7001'],
    [
      'redis+sentinel://127.0.0.1:26379/main?sentinelPassword=s3cret',
      'redis+sentinel://127.0.0.1:26379/main?sentinelPassword=***',
    ],
  ])('masks %s', (url, masked) => {
    expect(maskUrl(url)).toBe(masked)
  })
})

describe('HTTP tracker errors', () => {
  let server: Server
  let origin: string

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.headers['x-api-key'] === GOOD_KEY || req.url?.includes(`api-key=${GOOD_KEY}`)) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(req.url?.includes('active') ? '{}' : '[]')
        return
      }
      res.writeHead(403).end()
    })
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    await new Promise((resolveClose) => server?.close(resolveClose))
  })

  it('reports a rejected key', async () => {
    const result = await runCli(['recent', '--tracker-url', `${origin}/web-top?api-key=wrong-key-1234567`])
    expectOneLineError(result)
    expect(result.stderr).toMatch(/^web-top-cli: Cannot read from the tracker at http:\/\/127\.0\.0\.1:\d+\/web-top\?api-key=\*\*\*: /)
    expect(result.stderr).toContain('rejected the API key (HTTP 403 Forbidden)')
    // The key came from the URL, so the message names the URL's parameter, not the option.
    expect(result.stderr).toContain("the URL's api-key parameter holds the key")
    expect(result.stderr).not.toContain('TOP_WEB_API_KEY')
    expect(result.stderr).not.toContain('wrong-key-1234567')
    expect(result.stderr).not.toMatch(/(^|\s)web-top: /)
    expect(result.stderr).not.toMatch(/redis/i)
  })

  it('masks a key given with --api-key', async () => {
    const result = await runCli(['recent', '--tracker-url', `${origin}/web-top`, '--api-key', 'another-bad-key-987'])
    expectOneLineError(result)
    expect(result.stderr).not.toContain('another-bad-key-987')
  })

  it('asks for a key when none is given', async () => {
    const result = await runCli(['recent', '--tracker-url', `${origin}/web-top`])
    expectOneLineError(result, 2)
    expect(result.stderr).toContain('An API key is needed to read')
    expect(result.stderr).toContain('--api-key or TOP_WEB_API_KEY')
    expect(countOccurrences(result.stderr, /TOP_WEB_API_KEY/)).toBe(1)
    expect(result.stderr).not.toMatch(/(^|\s)web-top: /)
  })

  it('reads with a key from --api-key or TOP_WEB_API_KEY', async () => {
    const flag = await runCli(['recent', '--tracker-url', `${origin}/web-top`, '--api-key', GOOD_KEY])
    expect(flag.stderr).toBe('')
    expect(flag.code).toBe(0)
    const env = await runCli(['recent', '--tracker-url', `${origin}/web-top`], { env: { TOP_WEB_API_KEY: GOOD_KEY } })
    expect(env.code).toBe(0)
  })

  it('reports an unreachable endpoint with the HTTP hint', async () => {
    const port = await findFreePort()
    const result = await runCli(['recent', '--tracker-url', `http://127.0.0.1:${port}/web-top`, '--api-key', GOOD_KEY])
    expectOneLineError(result)
    expect(result.stderr).toContain(`Cannot connect to http://127.0.0.1:${port}/web-top (ECONNREFUSED)`)
    expect(result.stderr).toContain('Check that the app is running')
    expect(countOccurrences(result.stderr, /check that the app is running/)).toBe(1)
  })
})

describe('Redis at an http:// URL', () => {
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(async () => {
    await redis?.close()
  })

  it.each(['recent', 'check'])('%s says the port is Redis', async (command) => {
    const url = `http://127.0.0.1:${redis.port}/web-top`
    const result = await runCli([command, '--tracker-url', url, '--api-key', GOOD_KEY])

    expectOneLineError(result)
    expect(result.stderr).toContain(`web-top-cli: Cannot read from the tracker at ${url}: Cannot connect to ${url} (`)
    expect(result.stderr).toContain('The port replies to a PING as Redis does: read that Redis server with a redis://')
    expect(result.stderr).not.toContain('Check that the app is running')
  })
})

describe('Redis password errors', () => {
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis(['--requirepass', REDIS_PASSWORD])
  })

  afterAll(async () => {
    await redis?.close()
  })

  it.each([
    ['a wrong password', 'wrong-pass-0815', 'WRONGPASS'],
    ['no password', undefined, 'NOAUTH'],
  ])('reports %s', async (_case, password, reply) => {
    const auth = password === undefined ? '' : `:${password}@`
    const url = `redis://${auth}127.0.0.1:${redis.port}`
    const result = await runCli(['recent', '--tracker-url', url])
    expectOneLineError(result)
    expect(result.stderr).toContain(`Cannot connect to the tracker at redis://${password === undefined ? '' : ':***@'}127.0.0.1:`)
    expect(result.stderr).toContain(reply)
    expect(result.stderr).toContain('Check the user name and password in the URL')
    expect(result.stderr).not.toContain('Check that Redis is running')
    expect(result.stderr).not.toContain('wrong-pass-0815')
  })
})

describe('Redis database errors', () => {
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(async () => {
    await redis?.close()
  })

  it('names a database number the server does not have', async () => {
    const result = await runCli(['recent', '--tracker-url', `redis://127.0.0.1:${redis.port}/99999`])
    expectOneLineError(result)
    expect(result.stderr).toContain('DB index is out of range')
    expect(result.stderr).toContain('The server has no database of that number')
    expect(result.stderr).not.toContain('Check that Redis is running')
  })
})

describe('paused Redis', () => {
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
    redis.freeze()
  })

  afterAll(async () => {
    await redis?.close()
  })

  it.each(['recent', 'check'])('%s exits when its message says it gave up', async (command) => {
    const started = Date.now()
    const result = await runCli([command, '--tracker-url', redis.url], { timeoutMs: 20_000 })
    const elapsedMs = Date.now() - started

    expectOneLineError(result)
    // The kernel still accepts connections for a stopped server, so the message says so.
    expect(result.stderr).toContain(`Redis at ${redis.url} accepted the connection but did not reply within`)
    expect(result.stderr).toContain('check its log and SLOWLOG')
    const statedSeconds = /did not reply within (\d+(?:\.\d+)?) s\b/.exec(result.stderr)?.[1]
    expect(statedSeconds).toBeDefined()
    const statedMs = Number(statedSeconds) * 1000
    expect(elapsedMs).toBeGreaterThanOrEqual(statedMs)
    // Node's start and the output of the message take well under 1.5 s.
    expect(elapsedMs).toBeLessThan(statedMs + 1_500)
  })
})

describe('--tracker-url help', () => {
  const REDIS_SCHEMES = ['redis://', 'rediss://', 'redis+cluster://', 'redis+sentinel://']

  /** Returns the help of a command on one line, with the description of --tracker-url. */
  async function readHelp(command: string): Promise<{ help: string; urlDescription: string }> {
    const result = await runCli([command, '--help'])
    expect(result.code).toBe(0)
    const help = result.stdout.replace(/\s+/g, ' ')
    const urlDescription = /--tracker-url <url> (.*?)\(default/.exec(help)?.[1] ?? ''
    return { help, urlDescription }
  }

  it.each(READING_COMMANDS)('lists every scheme for %s', async (command) => {
    const { help, urlDescription } = await readHelp(command)
    for (const scheme of [...REDIS_SCHEMES, 'http(s)://']) {
      expect(urlDescription).toContain(scheme)
    }
    expect(help).toContain('--api-key <key>')
  })

  it.each(REDIS_ONLY_COMMANDS)('lists only Redis schemes for %s', async (command) => {
    const { help, urlDescription } = await readHelp(command)
    for (const scheme of REDIS_SCHEMES) {
      expect(urlDescription).toContain(scheme)
    }
    expect(urlDescription).not.toContain('http')
    expect(help).not.toContain('--api-key')
  })
})
