/**
 * Masks the secrets of a tracker URL before it is logged or printed: the
 * password of its user part and the values of query parameters that
 * contain passwords, API keys or tokens. The library's log lines and the
 * CLI's messages both use this function, so they mask the same secrets.
 */

/** Query parameters whose values are secrets: passwords, API keys and tokens. */
export const SECRET_PARAMETER = /([?&](?:[\w.-]*pass(?:word)?|api[-_]?key|apikey|[\w.-]*token|[\w.-]*secret)=)[^&#]*/gi

/** `//user:password@` with a password free of `@`, `/` and `,`. */
const USER_PASSWORD = /(\/\/[^:@/,]*:)[^@/,]*@/g

/**
 * Returns the URL with every secret replaced by `***`. Each entry of a
 * comma-separated list of URLs (a Cluster's nodes) is masked too, and so
 * is a URL that does not parse.
 */
export function maskUrl(url: string): string {
  return url
    .split(',')
    .map((part) => (part.includes('://') ? maskUserPassword(part) : part))
    .join(',')
    .replace(USER_PASSWORD, '$1***@')
    .replace(SECRET_PARAMETER, '$1***')
}

/**
 * Masks the password as the URL parser finds it: after the user name and
 * up to the last `@` of the authority. For a URL that does not parse, the
 * part after the user name up to the last `@` before the path is masked.
 */
function maskUserPassword(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/^([^:/]*:\/\/[^:@/]*:)[^/]*@/, '$1***@')
  }
}
