/**
 * The path of an HTTP request target, as the recorder stores it and as
 * `ignore` patterns match it. A target is in origin form (`/users/7?q=1`)
 * for most requests, and in absolute form (`http://host/users/7?q=1`) when
 * a client talks to the server as to a proxy.
 */
import { REDACTED } from './redact'

/** The scheme and authority that start a target in absolute form. */
const ABSOLUTE_FORM_START = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i

/**
 * Returns the path of a target that has neither query nor fragment: the
 * target itself in origin form, the part after the authority in absolute
 * form, or `/` when nothing follows the authority. Any other target is
 * returned as it is.
 */
export function pathOfTarget(target: string): string {
  if (target.startsWith('/')) return target
  const start = ABSOLUTE_FORM_START.exec(target)
  if (start === null) return target
  return target.length === start[0].length ? '/' : target.slice(start[0].length)
}

/** The authority of a target in absolute form, ending at the path, query or fragment. */
const ABSOLUTE_FORM_AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i

/**
 * Returns the host and port of a target in absolute form, without user
 * info, or undefined for any other target or an empty authority. A server
 * must take the host from such a target and ignore the Host header
 * (RFC 9112, section 3.2.2).
 */
export function hostOfTarget(url: string): string | undefined {
  if (url.startsWith('/')) return undefined
  const authority = ABSOLUTE_FORM_AUTHORITY.exec(url)?.[1]
  if (authority === undefined) return undefined
  const host = withoutUserInfo(authority)
  // A password with a raw `/` ends the authority early (`http://u:pa/ss@h/`),
  // which leaves `u:pa`. Such a text is no host and may hold part of a secret.
  return HOST_AND_PORT.test(host) ? host : undefined
}

/**
 * Returns an authority (a target's, or a Host header value) without the
 * user info before its host (`user:password@`). A password may contain a
 * raw `@`, so the host starts after the last one.
 */
export function withoutUserInfo(authority: string): string {
  const at = authority.lastIndexOf('@')
  return at === -1 ? authority : authority.slice(at + 1)
}

/**
 * Returns a Host header value with its user info, which no client should
 * send there but which would hold a password, replaced by `[REDACTED]`, as
 * the user info of a URL is masked.
 */
export function maskHostUserInfo(host: string): string {
  const at = host.lastIndexOf('@')
  return at === -1 ? host : `${REDACTED}${host.slice(at)}`
}

/** A host name, IPv4 address or bracketed IPv6 address, with an optional port of digits. */
const HOST_AND_PORT = /^(?:[^\s:@[\]]+|\[[0-9a-f:.]+\])(?::\d*)?$/i

/** Returns the path of a whole request target without its query and fragment, or `/` when the target is missing. */
export function pathOfUrl(url: string | undefined): string {
  if (url === undefined) return '/'
  let end = url.length
  const queryStart = url.indexOf('?')
  if (queryStart !== -1) end = queryStart
  const fragmentStart = url.indexOf('#')
  if (fragmentStart !== -1 && fragmentStart < end) end = fragmentStart
  return pathOfTarget(end === url.length ? url : url.slice(0, end))
}
