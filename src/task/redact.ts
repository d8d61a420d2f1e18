/**
 * Redaction and size caps applied to what a request puts in its record.
 * A record is written to a shared store and shown in terminals, so secrets
 * are masked by default and every variable-length part has a cap.
 */

/** Value stored in place of a secret. */
export const REDACTED = '[REDACTED]'

/** Suffix appended to a value that was cut at its cap. */
export const TRUNCATED = '…[truncated]'

/** Header names (lower case) whose values are always masked unless allowed. */
export const DEFAULT_SECRET_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-access-token',
  'x-csrf-token',
  'x-xsrf-token',
  'x-amz-security-token',
  'x-goog-api-key',
  'x-top-web-api-key',
  // The signed claims about the user that an AWS load balancer adds after OIDC sign-in.
  'x-amzn-oidc-data',
  // The same claims, as Azure App Service authentication adds them.
  'x-ms-client-principal',
  // Browsers cannot set Authorization on a WebSocket, so clients send tokens as subprotocols here
  // (`access_token, <token>`, or Kubernetes' `base64url.bearer.authorization.k8s.io.<token>`).
  'sec-websocket-protocol',
]

/**
 * Header names (lower case) kept in clear although they match
 * `SECRET_NAME`: authentication challenges and CORS flags carry no secret.
 */
const DEFAULT_PUBLIC_HEADERS: readonly string[] = [
  'www-authenticate',
  'proxy-authenticate',
  'access-control-allow-credentials',
]

/**
 * Lower-case names that look like credentials, matched anywhere in the
 * name. Header names, query parameter names, command-line option names and
 * `NAME=value` names all use it. `auth` does not count where it begins
 * `author`, `authority` or `authored`, but does in `authorization` and
 * `authorisation`. `pass`, `pw` and `otp` count only as whole words, so
 * `bypass`, `passenger` and `footprint` stay readable. `key` counts only after a word
 * that makes it a credential (`api-key`, `X_API_KEY`, `subscription-key`).
 */
const SECRET_NAME = new RegExp(
  [
    'auth(?!or(?!i[sz]))',
    'token',
    'secret',
    'passw(?:or)?d',
    'passphrase',
    'pwd',
    '(?:^|[-_.])pass(?:$|[-_.])',
    '(?:^|[-_.])pw(?:$|[-_.])',
    'session',
    'sessid',
    'passcode',
    'cookie',
    'csrf',
    'xsrf',
    'signature',
    'hmac',
    'credential',
    'jwt',
    '(?:^|[-_.])otp(?:$|[-_.])',
    '(?:api|access|private|secret|subscription|functions?|master|client|app|consumer|signing|encryption)' +
      '[-_.]?key',
  ].join('|'),
)

/**
 * `key` as the last word of a name (`key`, `private_key`, `STRIPE_KEY`).
 * Query parameters and command-line names use it, headers do not:
 * `Idempotency-Key` and `Sec-WebSocket-Key` carry no secret.
 */
const KEY_WORD = /(?:^|[-_.])key$/

/**
 * Names that are secrets in query strings only: OAuth's `code`,
 * `code_verifier` and `client_assertion`, signatures such as `sig`, names
 * that contain `private`, a signed SAML response (`SAMLResponse`),
 * Firebase's one-time `oobCode` and a CAS service `ticket`, which signs the
 * user in once. Also one-time codes named by their use (`verification_code`,
 * `reset_code`, OAuth's `device_code`), a `pin` (also `user_pin`, and
 * so `map_pin`), card numbers and their
 * security codes (`card_number`, `cvv`, `cvc`), and a bare `sid`, as
 * Socket.IO's polling requests carry their session id. `assertion` would
 * mask command-line switches such as Java's `-enableassertions`, so it is
 * not in `SECRET_NAME`.
 */
const SECRET_PARAM_ONLY = new RegExp(
  [
    '^code$',
    'code[-_.]?verifier',
    'sig$',
    'private',
    'assertion',
    'samlresponse',
    '^oobcode$',
    '^ticket$',
    '(?:^|[-_.])(?:verification|verify|reset|device|activation|confirmation|recovery|login|mfa|2fa|sms|email|security|access|invite|backup|one[-_.]?time)[-_.]?codes?$',
    '(?:^|[-_.])totp$',
    '(?:^|[-_.])pin(?:[-_.]?code)?$',
    '(?:^|[-_.])(?:credit[-_.]?)?card[-_.]?(?:number|num|no)$',
    '^cc[-_.]?(?:number|num)$',
    '(?:^|[-_.])cv[cv]2?$',
    '^sid$',
  ].join('|'),
)

/**
 * `pass` or `pw` at the end of a command-line name, as in `--dbpass`,
 * `--rootpw` and `MYSQL_PASS`, except `bypass`. `SECRET_NAME` reads them
 * only as whole words, which query parameters and headers need.
 */
const ARGUMENT_PASSWORD_END = /(?<!by)pass$|pw$/

/**
 * A word break in a camelCase name: a lower-case letter or digit followed by
 * an upper-case letter (`dbPass`), or the last capital of an acronym that
 * begins a word (`DBPass`, `SSHKey`).
 */
const CAMEL_CASE_BREAK = /(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])/g

/** Returns a name in lower case with its camelCase words split by `-` (`dbPassFile` to `db-pass-file`). */
export function toKebabCase(name: string): string {
  return name.replace(CAMEL_CASE_BREAK, '-').toLowerCase()
}

/** A run of characters that are neither letters nor digits, such as spaces, `_` or `[`. */
const NON_WORD_CHARACTERS = /[^\p{L}\p{N}]+/gu

/**
 * Returns a name in lower case with its words split by `-`: at camelCase
 * breaks and at every run of characters that are not letters or digits
 * (`userPass`, `user pass` and `user_pass` all to `user-pass`).
 */
function toWords(name: string): string {
  return toKebabCase(name).replace(NON_WORD_CHARACTERS, '-')
}

/**
 * Returns whether a command-line option or `NAME=value` name looks like a
 * credential. A camelCase name is read by its words (`redisPassword`,
 * `dbPass`, `apiKey`), and a name that ends in `pass` or `pw` counts too.
 * `passive`, `bypass` and `bypass-cache` do not.
 */
export function isSecretArgumentName(name: string): boolean {
  const words = toKebabCase(name)
  return SECRET_NAME.test(words) || KEY_WORD.test(words) || ARGUMENT_PASSWORD_END.test(words)
}

/** `=`, raw or percent-encoded once or more (`%3D`, `%253D`), which ends the name part of a pair sent as a name. */
export const NAME_VALUE_SEPARATOR = /=|%(?:25)*3d/i

/** A character other than a lower-case letter, a digit, `-`, `_` or `.`, such as a capital or a space. */
const SPLIT_NEEDED = /[^a-z0-9_.-]/

/**
 * Returns whether a query parameter name is secret by the default rules or
 * is one of `extraNames`. A name in bracket notation (`user[pass]`,
 * `tenant[0]`, `tenant[]`), as qs and PHP write nested fields and arrays,
 * is secret when one of its parts is. The default rules also test the name
 * split into words (`userPass` and `db pass` as `user-pass` and `db-pass`),
 * so the whole-word rules for `pass`, `pw`, `otp` and a last word `key` match.
 */
function isSecretParamName(name: string, extraNames: ReadonlySet<string>): boolean {
  // A client that encodes a whole pair (`key%3DSECRET`) sends it as a name,
  // and rules that match a whole name (`key`, `sig`, `redactParams`) see
  // only the part before the separator.
  const separator = NAME_VALUE_SEPARATOR.exec(name)
  if (separator !== null && separator.index > 0 && isSecretParamName(name.slice(0, separator.index), extraNames)) {
    return true
  }
  const lowerCaseName = name.toLowerCase()
  if (isSecretParamWord(lowerCaseName, extraNames)) return true
  if (lowerCaseName.includes('[')) {
    const parts = lowerCaseName.split(/[[\]]+/)
    if (parts.some((part) => part !== '' && isSecretParamWord(part, extraNames))) return true
  }
  // The rules read `-`, `_` and `.` alike, so only a name with other characters needs splitting.
  return SPLIT_NEEDED.test(name) && isSecretByDefault(toWords(name))
}

function isSecretParamWord(lowerCaseName: string, extraNames: ReadonlySet<string>): boolean {
  return extraNames.has(lowerCaseName) || isSecretByDefault(lowerCaseName)
}

function isSecretByDefault(lowerCaseName: string): boolean {
  return (
    SECRET_NAME.test(lowerCaseName) || KEY_WORD.test(lowerCaseName) || SECRET_PARAM_ONLY.test(lowerCaseName)
  )
}

/** Limits on the variable-length parts of one record. */
export interface SizeLimits {
  /** Longest path, URI or query value kept, in characters. */
  maxUrlLength: number
  /** Longest header value kept, in characters. */
  maxHeaderValueLength: number
  /** Most header pairs kept per direction. */
  maxHeaders: number
  /** Max number of query parameter values kept. Each value of a repeated name counts. */
  maxParams: number
}

export const DEFAULT_SIZE_LIMITS: Readonly<SizeLimits> = Object.freeze({
  maxUrlLength: 2048,
  maxHeaderValueLength: 1024,
  maxHeaders: 64,
  maxParams: 64,
})

/** Decides which header and parameter values are masked. */
export interface RedactionRules {
  isSecretHeader(lowerCaseName: string): boolean
  isSecretParam(name: string): boolean
}

export interface RedactionOptions {
  /** Further header names to mask. */
  redactHeaders?: readonly string[] | undefined
  /** Header names to keep in clear even though they are masked by default. */
  allowHeaders?: readonly string[] | undefined
  /** Further query parameter names to mask. */
  redactParams?: readonly string[] | undefined
  /** Query parameter names to keep in clear even though they look like secrets. */
  allowParams?: readonly string[] | undefined
}

/**
 * Max number of query parameter names whose decision each set of rules
 * caches, so that clients sending ever new names cannot grow the cache
 * without bound. Names past it, and names longer than
 * `MAX_CACHED_PARAM_NAME_LENGTH` characters, are tested on every request.
 */
const MAX_CACHED_PARAM_NAMES = 500
const MAX_CACHED_PARAM_NAME_LENGTH = 128

/** Builds the redaction rules once, at setup. */
export function createRedactionRules(options: RedactionOptions = {}): RedactionRules {
  const secretHeaders = new Set(DEFAULT_SECRET_HEADERS)
  for (const name of options.redactHeaders ?? []) secretHeaders.add(name.toLowerCase())

  const allowedHeaders = new Set((options.allowHeaders ?? []).map((name) => name.toLowerCase()))
  const publicHeaders = new Set(DEFAULT_PUBLIC_HEADERS)
  const secretParams = new Set((options.redactParams ?? []).map((name) => name.toLowerCase()))
  const allowedParams = new Set((options.allowParams ?? []).map((name) => name.toLowerCase()))
  const paramDecisions = new Map<string, boolean>()

  return {
    isSecretHeader(lowerCaseName) {
      if (allowedHeaders.has(lowerCaseName)) return false
      if (secretHeaders.has(lowerCaseName)) return true
      return !publicHeaders.has(lowerCaseName) && SECRET_NAME.test(lowerCaseName)
    },
    isSecretParam(name) {
      const known = paramDecisions.get(name)
      if (known !== undefined) return known

      const secret = !allowedParams.has(name.toLowerCase()) && isSecretParamName(name, secretParams)
      if (paramDecisions.size < MAX_CACHED_PARAM_NAMES && name.length <= MAX_CACHED_PARAM_NAME_LENGTH) {
        paramDecisions.set(name, secret)
      }
      return secret
    },
  }
}

/**
 * Cuts a string to `maxLength` UTF-16 code units and marks the cut. A cut
 * that would split a surrogate pair (an emoji, say) ends before the pair,
 * because half a pair is no character and encodes to UTF-8 as U+FFFD or
 * fails, as in Python's `str.encode`.
 */
export function truncate(value: string, maxLength: number): string {
  if (value.length <= maxLength) return value
  const last = value.charCodeAt(maxLength - 1)
  const end = last >= 0xd800 && last <= 0xdbff ? maxLength - 1 : maxLength
  return value.slice(0, end) + TRUNCATED
}
