import { describe, expect, it } from 'vitest'
import { createRedactionRules, DEFAULT_SECRET_HEADERS, TRUNCATED, truncate } from '../src/task/redact'

describe('secret headers', () => {
  const rules = createRedactionRules()

  it.each([...DEFAULT_SECRET_HEADERS, 'x-my-api-key', 'x-apikey', 'x-session-id', 'x-auth-user', 'x-refresh-token', 'x-hub-signature', 'x-access-key', 'x-jwt', 'x-credentials'])(
    'masks %s',
    (name) => {
      expect(rules.isSecretHeader(name)).toBe(true)
    },
  )

  it.each(['host', 'user-agent', 'accept', 'content-type', 'content-length', 'x-request-id', 'x-forwarded-for', 'cf-ipcountry', 'author'])(
    'keeps %s',
    (name) => {
      expect(rules.isSecretHeader(name)).toBe(false)
    },
  )

  it('adds and allows names', () => {
    const custom = createRedactionRules({ redactHeaders: ['X-Tenant'], allowHeaders: ['Cookie'] })
    expect(custom.isSecretHeader('x-tenant')).toBe(true)
    expect(custom.isSecretHeader('cookie')).toBe(false)
    expect(custom.isSecretHeader('authorization')).toBe(true)
  })
})

describe('secret query parameters', () => {
  const rules = createRedactionRules()

  it.each([
    'token',
    'access_token',
    'refreshToken',
    'password',
    'passwd',
    'pwd',
    'api_key',
    'apikey',
    'api-key',
    'key',
    'client_secret',
    'auth',
    'x.auth',
    'session',
    'sessionId',
    'sig',
    'signature',
    'credentials',
    'private_key',
    'otp',
    'jwt',
    'id_jwt',
    'code',
    'code_verifier',
  ])('masks %s', (name) => {
    expect(rules.isSecretParam(name)).toBe(true)
  })

  it.each(['page', 'limit', 'q', 'sort', 'author', 'authority', 'footprint', 'keyword', 'monkey', 'id', 'zipcode', 'country_code'])(
    'keeps %s',
    (name) => {
      expect(rules.isSecretParam(name)).toBe(false)
    },
  )

  it('adds and allows names', () => {
    const custom = createRedactionRules({ redactParams: ['Email'], allowParams: ['session'] })
    expect(custom.isSecretParam('email')).toBe(true)
    expect(custom.isSecretParam('EMAIL')).toBe(true)
    expect(custom.isSecretParam('session')).toBe(false)
    expect(custom.isSecretParam('token')).toBe(true)
  })
})

describe('truncate', () => {
  it('keeps a value at the cap', () => {
    expect(truncate('abcd', 4)).toBe('abcd')
  })

  it('cuts a longer value and marks it', () => {
    expect(truncate('abcdef', 4)).toBe(`abcd${TRUNCATED}`)
  })
})
