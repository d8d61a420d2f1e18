/**
 * Recognizes a failed connection to a port that does not speak Redis with
 * the TLS setting of the URL. The cases are an HTTP server, a TLS port
 * reached with redis://, a port without TLS reached with rediss://, and a
 * TLS handshake that failed, as on a certificate that Node does not trust.
 *
 * NOTE: a redis+sentinel:// URL whose Sentinel port speaks another protocol
 * still gets "All sentinels are unreachable", because ioredis 5 keeps only
 * "Connection is closed." of each Sentinel connection.
 */
import { connect as connectTcp, isIP, type Socket } from 'node:net'
import { connect as connectTls } from 'node:tls'

/** The cause of a failed connection, printed after the URL, and the hint on what to do about it. */
export interface ProtocolMismatch {
  reason: string
  hint: string
}

/** How long a probe of the URL's port (`probeTls`, `probePlainRedis`) may take. */
const PROBE_TIMEOUT_MS = 2_000

/** Maximum number of characters of a server's first line that a message quotes. */
const MAX_QUOTED_CHARACTERS = 60

const HTTP_HINT =
  'Check the port in the URL: an HTTP server listens there, not Redis. To read the tracker endpoint of an app, ' +
  'use its http(s):// URL, such as http://127.0.0.1:3000/web-top, with --api-key or TOP_WEB_API_KEY'

const OTHER_SERVER_HINT = 'Check the host and port in the URL: a server of another kind listens there, not Redis'

/** Node's codes for a certificate chain that ends in no certificate authority it trusts. */
const UNTRUSTED_CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
])

const UNTRUSTED_CERTIFICATE_HINT =
  "Node does not trust the server's certificate: set NODE_EXTRA_CA_CERTS to the PEM file of the certificate " +
  'authority that signed it (for a self-signed certificate, the certificate itself), for example ' +
  'NODE_EXTRA_CA_CERTS=/etc/ssl/private-ca.crt'

const CERTIFICATE_NAME_HINT =
  "The server's certificate does not list the host of the URL: use a host name or IP address that its " +
  'subject alternative names contain'

const CERTIFICATE_DATE_HINT = "Renew the server's certificate, or check the clock of this host"

/**
 * Returns the hint for a Node error code on the server's certificate, or
 * undefined for another code.
 */
export function describeCertificateCode(code: string): string | undefined {
  if (UNTRUSTED_CERTIFICATE_CODES.has(code)) return UNTRUSTED_CERTIFICATE_HINT
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return CERTIFICATE_NAME_HINT
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return CERTIFICATE_DATE_HINT
  return undefined
}

/** OpenSSL's codes, as Node reports them, for a TLS handshake that got a reply without TLS. */
const NOT_TLS_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG'])

const NOT_TLS_HINT =
  'The port has no TLS: use redis:// if the server there is Redis without TLS, or check the port in the URL'

const CLIENT_CERTIFICATE_HINT =
  'web-top-cli sends no client certificate: set tls-auth-clients to no or optional in the redis.conf of the ' +
  'server (yes is the Redis default), or read through the http(s):// tracker endpoint of an app'

const TLS_SETTINGS_HINT =
  'Check the TLS settings of the server, such as tls-protocols, tls-ciphers and tls-auth-clients in its redis.conf'

const TLS_PORT_HINT = 'The port expects TLS: use rediss:// in place of redis://'

const PLAIN_PORT_HINT = 'The port has no TLS: use redis:// in place of rediss://'

/**
 * Returns the mismatch that the error of a failed connection to a
 * `redis://` or `rediss://` URL shows, or undefined for any other error.
 * For a redis:// URL whose server closed the connection, it opens a TLS
 * connection to the same port (`probeTls`) to see whether the port expects TLS.
 */
export async function findProtocolMismatch(url: string, error: unknown): Promise<ProtocolMismatch | undefined> {
  const mismatch = describeMismatchError(error)
  if (mismatch !== undefined) return mismatch

  const code = (error as NodeJS.ErrnoException | undefined)?.code
  const message = error instanceof Error ? error.message : String(error)

  // A Redis server with TLS only on that port closes a connection that sends plain text.
  const closed = code === 'ECONNRESET' || code === 'EPIPE' || message === 'Connection is closed.'
  if (closed && /^redis:/i.test(url) && (await probeTls(url))) {
    return {
      reason: 'the server closed the connection, and it completes a TLS handshake on that port',
      hint: TLS_PORT_HINT,
    }
  }
  // A Redis server without TLS reads the TLS handshake as the start of a command and waits for its end.
  if (code === 'ETIMEDOUT' && /^rediss:/i.test(url) && (await probePlainRedis(url))) {
    return {
      reason: 'the TLS handshake timed out, and the server replies to a PING without TLS on that port',
      hint: PLAIN_PORT_HINT,
    }
  }
  return undefined
}

/**
 * Returns the mismatch that an error shows by itself: a reply that is not
 * the Redis protocol, or a failed TLS handshake. Returns undefined for any
 * other error.
 */
export function describeMismatchError(error: unknown): ProtocolMismatch | undefined {
  const reply = readUnexpectedReply(error)
  if (reply !== undefined) {
    const quoted = JSON.stringify(reply)
    if (/^HTTP\/\d/.test(reply)) {
      return { reason: `the server replied ${quoted}, as an HTTP server does, not Redis`, hint: HTTP_HINT }
    }
    return { reason: `the server replied ${quoted}, which is not the Redis protocol`, hint: OTHER_SERVER_HINT }
  }

  const code = (error as NodeJS.ErrnoException | undefined)?.code
  const message = error instanceof Error ? error.message : String(error)
  const certificateHint = code === undefined ? undefined : describeCertificateCode(code)
  if (certificateHint !== undefined) return { reason: `${message} (${code})`, hint: certificateHint }
  if (code !== undefined && NOT_TLS_CODES.has(code)) {
    return { reason: `the server replied to the TLS handshake without TLS (${code})`, hint: NOT_TLS_HINT }
  }
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return { reason: `the server requires a client certificate (${code})`, hint: CLIENT_CERTIFICATE_HINT }
  }
  if (code?.startsWith('ERR_SSL_') === true) {
    return { reason: `the TLS handshake failed: ${readOpenSslReason(message)} (${code})`, hint: TLS_SETTINGS_HINT }
  }
  return undefined
}

/**
 * Returns the first line that a server sent in place of a Redis reply, as
 * redis-parser keeps it in the `buffer` field of its ParserError (the JSON
 * of a Node Buffer), with characters outside printable ASCII dropped.
 */
function readUnexpectedReply(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== 'ParserError') return undefined
  const buffer = (error as Error & { buffer?: unknown }).buffer
  if (typeof buffer !== 'string') return undefined
  let bytes: unknown
  try {
    bytes = (JSON.parse(buffer) as { data?: unknown }).data
  } catch {
    return undefined
  }
  if (!Array.isArray(bytes) || !bytes.every((byte) => typeof byte === 'number')) return undefined
  const firstLine = Buffer.from(bytes as number[]).toString('latin1').split(/\r?\n/)[0] ?? ''
  const printable = firstLine.replace(/[^\x20-\x7e]/g, '').trim()
  return printable === '' ? undefined : printable.slice(0, MAX_QUOTED_CHARACTERS)
}

/**
 * Returns the reason in an OpenSSL error message, such as "sslv3 alert
 * handshake failure" from "80DC...:error:0A000410:SSL routines:ssl3_read_bytes:
 * sslv3 alert handshake failure:../deps/openssl/...", or the whole message
 * when it has another form.
 */
function readOpenSslReason(message: string): string {
  return /:SSL routines:[^:]*:([^:]+):/.exec(message)?.[1] ?? message
}

/**
 * Resolves to whether the host and port of a redis:// URL complete a TLS
 * handshake within 2 s. The probe checks no certificate, because it only
 * tests whether the port expects TLS, and sends nothing after the handshake.
 */
function probeTls(url: string): Promise<boolean> {
  const { host, port, servername } = readAddress(url)
  const socket = connectTls({ host, port, servername, rejectUnauthorized: false })
  return probe(socket, (settle) => socket.once('secureConnect', () => settle(true)))
}

/**
 * Resolves to whether the host and port of a URL reply to a PING sent
 * without TLS within 2 s, as Redis does: "+PONG", or an error reply such
 * as "-NOAUTH" when it requires a password.
 */
export function probePlainRedis(url: string): Promise<boolean> {
  const { host, port } = readAddress(url)
  const socket = connectTcp({ host, port })
  return probe(socket, (settle) => {
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (chunk: Buffer) => settle(chunk[0] === 0x2b || chunk[0] === 0x2d))
  })
}

/** Runs a probe on `socket`: false on an error or after 2 s, and the socket destroyed once it settles. */
function probe(socket: Socket, listen: (settle: (result: boolean) => void) => void): Promise<boolean> {
  return new Promise((resolve) => {
    const settle = (result: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => settle(false), PROBE_TIMEOUT_MS)
    socket.once('error', () => settle(false))
    listen(settle)
  })
}

/** Ports of URLs without one, by scheme. */
const DEFAULT_PORTS: Record<string, number> = { 'redis:': 6379, 'rediss:': 6379, 'http:': 80, 'https:': 443 }

/** Returns the host and port of a single-server URL, and the TLS server name for a host that is not an IP address. */
function readAddress(url: string): { host: string; port: number; servername: string | undefined } {
  const { hostname, port, protocol } = new URL(url)
  const host = hostname.replace(/^\[(.*)\]$/, '$1')
  const portNumber = port === '' ? (DEFAULT_PORTS[protocol.toLowerCase()] ?? 6379) : Number(port)
  return { host, port: portNumber, servername: isIP(host) === 0 ? host : undefined }
}
