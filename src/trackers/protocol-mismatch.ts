/**
 * Recognizes a failed connection to a port that does not speak Redis with
 * the TLS setting of the URL. The cases are an HTTP server, a TLS port
 * reached with redis://, a port without TLS reached with rediss://, and a
 * TLS handshake that failed, as on a certificate that Node does not trust.
 * web-top-cli reports the mismatch when it cannot connect, and the recorder
 * logs it (`MismatchDiagnosis`).
 *
 * NOTE: a redis+sentinel:// URL whose Sentinel port speaks another protocol
 * still gets "All sentinels are unreachable", because ioredis 5 keeps only
 * "Connection is closed." of each Sentinel connection.
 */
import { connect as connectTcp, isIP, type Socket } from 'node:net'
import { connect as connectTls } from 'node:tls'
import { readPasswordForms } from '../util/mask-url'

/** The cause of a failed connection, printed after the URL, and the hint on what to do about it. */
export interface ProtocolMismatch {
  reason: string
  hint: string
  /**
   * The reason with the server's reply left out, so that two mismatches of
   * one kind differ at most in the reply they quote. A server that is not
   * Redis may send another line on each connection, so the recorder
   * rate-limits its log lines by kind.
   */
  kind: string
}

/** How long a probe of the URL's port (`probeTls`, `probePlainRedis`) may take. */
const PROBE_TIMEOUT_MS = 2_000

/** How long `probeRejection` waits for the error line that Redis sends at once to a client it rejects. */
const REJECTION_PROBE_TIMEOUT_MS = 1_000

/** Maximum number of characters of a server's first line that a message quotes. */
const MAX_QUOTED_CHARACTERS = 60

const HTTP_HINT =
  'Check the port in the URL: an HTTP server listens there, not Redis. To read the tracker endpoint of an app, ' +
  'use its http(s):// URL, such as http://127.0.0.1:3000/web-top, with --api-key or TOP_WEB_API_KEY'

const RECORDER_HTTP_HINT =
  'Check the port in the tracker URL: an HTTP server listens there, not Redis. Give the port that Redis listens on ' +
  '(6379 by default)'

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

const RECORDER_CLIENT_CERTIFICATE_HINT =
  'A client made from a tracker URL sends no client certificate: set tls-auth-clients to no or optional in the ' +
  'redis.conf of the server (yes is the Redis default), or give the recorder an ioredis client with the ' +
  'certificate in its tls options (the `redis` option)'

/** The program that connects: the hints it gets, and how it runs the probes. */
interface Connector {
  httpHint: string
  clientCertificateHint: string
  /** Whether a probe lets the process exit while it runs, as a probe in the background of an app must. */
  unrefProbes: boolean
  /**
   * Passwords that a quoted reply shows as `***`. A server that is not
   * Redis may quote the AUTH command, which the client sends first.
   */
  secrets: readonly string[]
}

const CLI: Connector = {
  httpHint: HTTP_HINT,
  clientCertificateHint: CLIENT_CERTIFICATE_HINT,
  unrefProbes: false,
  secrets: [],
}

const RECORDER: Connector = {
  httpHint: RECORDER_HTTP_HINT,
  clientCertificateHint: RECORDER_CLIENT_CERTIFICATE_HINT,
  unrefProbes: true,
  secrets: [],
}

const TLS_SETTINGS_HINT =
  'Check the TLS settings of the server, such as tls-protocols, tls-ciphers and tls-auth-clients in its redis.conf'

const TLS_PORT_HINT = 'The port expects TLS: use rediss:// in place of redis://'

const PLAIN_PORT_HINT = 'The port has no TLS: use redis:// in place of rediss://'

/**
 * The error of ioredis 5 for a command sent on a closed connection when its
 * offline queue is off, as the recorder's is.
 */
const STREAM_CLOSED_MESSAGE = "Stream isn't writeable and enableOfflineQueue options is false"

/**
 * Returns whether an error shows that the server closed the connection.
 * The recorder's client turns its offline queue off and sends a command
 * once (`maxRetriesPerRequest: 1`). When the server closes the connection
 * before the ready check, that client gets no error but the failed ready
 * check: "Stream isn't writeable" or a MaxRetriesPerRequestError.
 */
function isClosedConnectionError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ECONNRESET' || code === 'EPIPE') return true
  if (!(error instanceof Error)) return false
  return (
    error.message === 'Connection is closed.' ||
    error.message === STREAM_CLOSED_MESSAGE ||
    error.name === 'MaxRetriesPerRequestError'
  )
}

/**
 * Returns the mismatch that the error of a failed connection to a
 * `redis://` or `rediss://` URL shows, or undefined for any other error.
 * For a redis:// URL whose server closed the connection, it opens a TLS
 * connection to the same port (`probeTls`) to see whether the port expects TLS.
 */
export function findProtocolMismatch(url: string, error: unknown): Promise<ProtocolMismatch | undefined> {
  return findMismatch(url, error, CLI)
}

async function findMismatch(url: string, error: unknown, connector: Connector): Promise<ProtocolMismatch | undefined> {
  const mismatch = describeMismatch(error, connector)
  if (mismatch !== undefined) return mismatch

  // Redis rejects a client over its `maxclients`, or from another host in protected mode, with an error line.
  if (isClosedConnectionError(error) && /^redis:/i.test(url)) {
    const rejection = await probeRejection(url, connector.unrefProbes)
    if (rejection !== undefined) return describeRejection(rejection, connector.secrets)
  }
  // A Redis server with TLS only on that port closes a connection that sends plain text.
  if (isClosedConnectionError(error) && /^redis:/i.test(url) && (await probeTls(url, connector.unrefProbes))) {
    return unquotedMismatch(
      'the server closed the connection, and it completes a TLS handshake on that port',
      TLS_PORT_HINT,
    )
  }
  // TLS 1.3 sends the alert for a missing client certificate after the
  // handshake, so a client that writes at once may get ECONNRESET instead.
  if (isClosedConnectionError(error) && /^rediss:/i.test(url) && (await probeClientCertificate(url, connector.unrefProbes))) {
    return unquotedMismatch(`the server requires a client certificate (${CERTIFICATE_REQUIRED})`, connector.clientCertificateHint)
  }
  // A Redis server without TLS reads the TLS handshake as the start of a command and waits for its end.
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ETIMEDOUT' && /^rediss:/i.test(url) && (await probePlainRedis(url, connector.unrefProbes))) {
    return unquotedMismatch(
      'the TLS handshake timed out, and the server replies to a PING without TLS on that port',
      PLAIN_PORT_HINT,
    )
  }
  return undefined
}

/**
 * Returns the mismatch that an error shows by itself: a reply that is not
 * the Redis protocol, or a failed TLS handshake. Returns undefined for any
 * other error.
 */
export function describeMismatchError(error: unknown): ProtocolMismatch | undefined {
  return describeMismatch(error, CLI)
}

function describeMismatch(error: unknown, connector: Connector): ProtocolMismatch | undefined {
  const reply = readUnexpectedReply(error, connector.secrets)
  if (reply !== undefined) {
    const quoted = JSON.stringify(reply)
    if (/^HTTP\/\d/.test(reply)) {
      return {
        reason: `the server replied ${quoted}, as an HTTP server does, not Redis`,
        hint: connector.httpHint,
        kind: 'the server replied as an HTTP server does, not Redis',
      }
    }
    return {
      reason: `the server replied ${quoted}, which is not the Redis protocol`,
      hint: OTHER_SERVER_HINT,
      kind: 'the server replied with a line that is not the Redis protocol',
    }
  }
  const firstBytes = readUnexpectedBinary(error)
  if (firstBytes !== undefined) {
    return {
      reason: `the server replied with binary data (${firstBytes}), which is not the Redis protocol`,
      hint: OTHER_SERVER_HINT,
      kind: 'the server replied with binary data, which is not the Redis protocol',
    }
  }

  const code = (error as NodeJS.ErrnoException | undefined)?.code
  const message = error instanceof Error ? error.message : String(error)
  const certificateHint = code === undefined ? undefined : describeCertificateCode(code)
  if (certificateHint !== undefined) return unquotedMismatch(`${message} (${code})`, certificateHint)
  if (code !== undefined && NOT_TLS_CODES.has(code)) {
    return unquotedMismatch(`the server replied to the TLS handshake without TLS (${code})`, NOT_TLS_HINT)
  }
  if (code === CERTIFICATE_REQUIRED) {
    return unquotedMismatch(`the server requires a client certificate (${code})`, connector.clientCertificateHint)
  }
  if (code?.startsWith('ERR_SSL_') === true) {
    return unquotedMismatch(`the TLS handshake failed: ${readOpenSslReason(message)} (${code})`, TLS_SETTINGS_HINT)
  }
  return undefined
}

const MAX_CLIENTS_HINT =
  "Redis has as many clients as its maxclients setting allows: raise maxclients in the server's configuration, " +
  'or find the clients that hold connections open (CLIENT LIST)'

const PROTECTED_MODE_HINT =
  'Redis runs in protected mode and accepts clients from its own host only: set a password (requirepass) ' +
  'or an ACL user on the server and give it in the URL, or turn protected-mode off once the server is ' +
  'reachable from trusted hosts only'

const REJECTION_HINT = "Redis closed the connection with this error: see the server's log for its cause"

/**
 * Describes the error line that a server sent on a new connection before
 * it closed it, as Redis does for a client it rejects.
 */
function describeRejection(line: string, secrets: readonly string[]): ProtocolMismatch {
  const printable = toPrintableText(line, secrets)
  const hint = /^-ERR max number of clients/i.test(printable)
    ? MAX_CLIENTS_HINT
    : /^-DENIED\b/.test(printable)
      ? PROTECTED_MODE_HINT
      : REJECTION_HINT
  const quoted = JSON.stringify(printable.slice(1, 1 + MAX_QUOTED_CHARACTERS))
  return { reason: `the server closed the connection with the error ${quoted}`, hint, kind: hint }
}

/** Returns a mismatch whose reason quotes no reply, so that the reason is also its kind. */
function unquotedMismatch(reason: string, hint: string): ProtocolMismatch {
  return { reason, hint, kind: reason }
}

/**
 * Returns the first line that a server sent in place of a Redis reply
 * (`readParserErrorBytes`). Characters outside printable ASCII are dropped,
 * and each of `secrets` is masked before the line is cut to its quoted length.
 */
function readUnexpectedReply(error: unknown, secrets: readonly string[]): string | undefined {
  const bytes = readParserErrorBytes(error)
  if (bytes === undefined) return undefined
  const firstLine = bytes.toString('latin1').split(/\r?\n/)[0] ?? ''
  const printable = toPrintableText(firstLine, secrets)
  return printable === '' ? undefined : printable.slice(0, MAX_QUOTED_CHARACTERS)
}

/** Returns the printable ASCII of a line that a server sent, trimmed, with each of `secrets` masked as `***`. */
function toPrintableText(line: string, secrets: readonly string[]): string {
  let printable = line.replace(/[^\x20-\x7e]/g, '').trim()
  for (const secret of secrets) printable = printable.split(secret).join('***')
  return printable
}

/** Maximum number of control bytes of a binary reply that a message shows in hex. */
const MAX_QUOTED_BYTES = 8

/**
 * Describes the bytes that a server sent in place of a Redis reply when its
 * first line has no printable character (`readUnexpectedReply`): the
 * control bytes it starts with, in hex, such as `0x00 0x01 …`. Other bytes
 * are left out, because a server may echo what the client sent, and the
 * password of a URL can hold any byte from 0x80 up, which is not printable
 * ASCII either. Returns undefined for any other error.
 * NOTE: a password with control characters, percent-encoded in the URL,
 * would still show when a server echoes it at the start of its reply.
 */
function readUnexpectedBinary(error: unknown): string | undefined {
  const bytes = readParserErrorBytes(error)
  if (bytes === undefined) return undefined
  const lineEnd = bytes.indexOf(0x0a)
  const firstLine = lineEnd === -1 ? bytes : bytes.subarray(0, lineEnd)
  if (firstLine.length === 0) return undefined
  let controlBytes = 0
  while (controlBytes < Math.min(firstLine.length, MAX_QUOTED_BYTES) && isControlByte(firstLine[controlBytes] as number)) {
    controlBytes++
  }
  if (controlBytes === 0) return 'not shown'
  const hexBytes = [...firstLine.subarray(0, controlBytes)].map((byte) => `0x${byte.toString(16).padStart(2, '0')}`)
  return controlBytes < firstLine.length ? `${hexBytes.join(' ')} …` : hexBytes.join(' ')
}

/** Returns true for an ASCII control byte (0x00 to 0x1f, 0x7f). */
function isControlByte(byte: number): boolean {
  return byte < 0x20 || byte === 0x7f
}

/**
 * Returns the bytes that redis-parser could not read as a reply. Its
 * ParserError keeps them in the `buffer` field, as the JSON of a Node Buffer.
 */
function readParserErrorBytes(error: unknown): Buffer | undefined {
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
  return Buffer.from(bytes as number[])
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

/** Node's code for the TLS 1.3 alert of a server that requires a client certificate. */
const CERTIFICATE_REQUIRED = 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'

/**
 * Resolves to whether the host and port of a rediss:// URL end a TLS
 * connection that sends nothing with the alert that a client certificate
 * is required, within 2 s. The probe checks no certificate of the server.
 */
function probeClientCertificate(url: string, unref: boolean): Promise<boolean> {
  const { host, port, servername } = readAddress(url)
  const socket = connectTls({ host, port, servername, rejectUnauthorized: false })
  return probe(socket, unref, false, PROBE_TIMEOUT_MS, (settle) => {
    // Ahead of the probe's own listener, which settles any error as false.
    socket.prependOnceListener('error', (error: NodeJS.ErrnoException) => {
      if (error.code === CERTIFICATE_REQUIRED) settle(true)
    })
  })
}

/**
 * Resolves to whether the host and port of a redis:// URL complete a TLS
 * handshake within 2 s. The probe checks no certificate, because it only
 * tests whether the port expects TLS, and sends nothing after the handshake.
 */
function probeTls(url: string, unref: boolean): Promise<boolean> {
  const { host, port, servername } = readAddress(url)
  const socket = connectTls({ host, port, servername, rejectUnauthorized: false })
  return probe(socket, unref, false, PROBE_TIMEOUT_MS, (settle) => socket.once('secureConnect', () => settle(true)))
}

/**
 * Resolves to whether the host and port of a URL reply to a PING sent
 * without TLS within 2 s, as Redis does: "+PONG", or an error reply such
 * as "-NOAUTH" when it requires a password. With `unref`, the probe does
 * not keep the process alive.
 */
export function probePlainRedis(url: string, unref = false): Promise<boolean> {
  const { host, port } = readAddress(url)
  const socket = connectTcp({ host, port })
  return probe(socket, unref, false, PROBE_TIMEOUT_MS, (settle) => {
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (chunk: Buffer) => settle(chunk[0] === 0x2b || chunk[0] === 0x2d))
  })
}

/**
 * Resolves to the first line that the host and port of a URL send before
 * they are sent anything, when it is an error reply, within 1 s. A Redis
 * server sends nothing first, except an error line just before it closes
 * the connection of a client it rejects, at once. Resolves to undefined otherwise.
 */
function probeRejection(url: string, unref: boolean): Promise<string | undefined> {
  const { host, port } = readAddress(url)
  const socket = connectTcp({ host, port })
  return probe<string | undefined>(socket, unref, undefined, REJECTION_PROBE_TIMEOUT_MS, (settle) => {
    let received = ''
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
      const lineEnd = received.indexOf('\r\n')
      if (!received.startsWith('-')) settle(undefined)
      else if (lineEnd !== -1) settle(received.slice(0, lineEnd))
    })
    socket.once('end', () => settle(undefined))
  })
}

/**
 * Runs a probe on `socket`: `fallback` on an error or after `timeoutMs`, and the
 * socket destroyed once it settles. With `unref`, neither the socket nor the timer
 * keeps the process alive, and a process that exits meanwhile ends the probe.
 */
function probe<T>(
  socket: Socket,
  unref: boolean,
  fallback: T,
  timeoutMs: number,
  listen: (settle: (result: T) => void) => void,
): Promise<T> {
  return new Promise((resolve) => {
    let settled = false
    const settle = (result: T) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => settle(fallback), timeoutMs)
    if (unref) {
      timer.unref()
      socket.unref()
    }
    socket.once('error', () => settle(fallback))
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

/** Max number of kinds of error that `MismatchDiagnosis` probes for in one outage. */
const MAX_PROBED_KINDS = 8

/**
 * The protocol mismatch checks for the connection errors of a Redis client
 * that the recorder made from a single-server `redis://` or `rediss://`
 * URL. A mismatch that an error shows by itself is found at once. Other
 * errors may need a probe of the URL's host and port, which runs in the
 * background and reports a mismatch it finds to `onFound`. Each kind of
 * error (its code, or its message when it has none) is probed for once per
 * outage, one probe at a time, so an error that keeps coming costs one probe
 * of at most 2 s.
 */
export class MismatchDiagnosis {
  readonly #url: string
  /** The recorder's hints and probes, with the password of the URL as the secret to mask. */
  readonly #connector: Connector
  readonly #onFound: (mismatch: ProtocolMismatch) => void
  /** The result of each kind of error probed for in this outage, undefined for a probe that found nothing or is under way. */
  readonly #probed = new Map<string, ProtocolMismatch | undefined>()
  #probing = false

  constructor(url: string, onFound: (mismatch: ProtocolMismatch) => void) {
    this.#url = url
    this.#connector = { ...RECORDER, secrets: readQuotedPasswords(url) }
    this.#onFound = onFound
  }

  /**
   * Returns the mismatch that `error` shows by itself, or that a probe of
   * this outage found for the same kind of error. Otherwise starts a probe,
   * unless that kind was probed for already or another probe is under way,
   * and returns undefined. The probe's promise ends in a catch, so it
   * never rejects into the app.
   */
  find(error: unknown): ProtocolMismatch | undefined {
    const mismatch = describeMismatch(error, this.#connector)
    if (mismatch !== undefined) return mismatch

    const kind = readErrorKind(error)
    if (this.#probed.has(kind)) return this.#probed.get(kind)
    if (this.#probing || this.#probed.size >= MAX_PROBED_KINDS) return undefined
    this.#probed.set(kind, undefined)
    this.#probing = true
    findMismatch(this.#url, error, this.#connector)
      .then((found) => {
        this.#probing = false
        // Once the outage ended, the result is out of date.
        if (found === undefined || !this.#probed.has(kind)) return
        this.#probed.set(kind, found)
        this.#onFound(found)
      })
      // The probes reject only on a URL that does not parse, which the
      // tracker rejects before it connects. Nothing may reach the app as
      // an unhandled rejection, an exception of `onFound` included.
      .catch(() => {
        this.#probing = false
      })
    return undefined
  }

  /** Forgets the results of this outage, once the connection is ready: the next error is probed for again. */
  endOutage(): void {
    this.#probed.clear()
  }
}

/** Returns the code of an error, or its message when it has none. */
function readErrorKind(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (typeof code === 'string') return code
  return error instanceof Error ? error.message : String(error)
}

/**
 * Returns the passwords of a URL as written and decoded, as the printable
 * ASCII that a quoted reply keeps of them. A password shorter than 3
 * characters is left out, because masking it would hide ordinary text.
 */
function readQuotedPasswords(url: string): string[] {
  const printable = readPasswordForms(url).map((secret) => secret.replace(/[^\x20-\x7e]/g, ''))
  return [...new Set(printable)].filter((secret) => secret.length >= 3)
}
