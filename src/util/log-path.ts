/**
 * The request path as web-top's log lines name it. A request URL comes
 * from the client, so a log line takes only its path: the query string and
 * a fragment can carry tokens, and the path is cut and its control
 * characters escaped.
 */
import { createRedactionRules } from '../task/redact'
import { maskPathParams, maskUserInfo } from '../task/url-redact'

/**
 * The default masking rules. A log line has no recorder's options at hand,
 * so a parameter that `allowParams` keeps in the record is masked here too.
 */
const DEFAULT_RULES = createRedactionRules()

/** Max characters of a path in a log line. */
const MAX_LOGGED_PATH_LENGTH = 200

/**
 * Returns the path of a request URL without its query string and fragment,
 * short and safe to print. The user info of a target in absolute form
 * (`http://user:password@host/`) and secret path parameters
 * (`;jsessionid=…`) are masked.
 */
export function describePathForLog(url: string | undefined): string {
  if (url === undefined) return '/'
  const pathEnd = url.search(/[?#]/)
  const path = maskPathParams(maskUserInfo(pathEnd === -1 ? url : url.slice(0, pathEnd)), DEFAULT_RULES)
  const cut = path.length > MAX_LOGGED_PATH_LENGTH ? `${path.slice(0, MAX_LOGGED_PATH_LENGTH)}…` : path
  // JSON escapes the control characters, and a terminal shows the escapes as text.
  return JSON.stringify(cut).slice(1, -1)
}
