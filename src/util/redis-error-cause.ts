/**
 * Reading the cause that an ioredis error keeps in its fields rather than
 * in its message.
 */

/**
 * Returns the message of the error behind an ioredis error: the error of
 * the last node that a Cluster client tried (`ClusterAllFailedError`, whose
 * own message is "Failed to refresh slots cache."), or the first error of a
 * transaction that Redis then discarded (`EXECABORT`). Returns undefined
 * for any other error.
 */
export function findRedisErrorCause(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined
  const { lastNodeError, previousErrors } = error as Error & { lastNodeError?: unknown; previousErrors?: unknown }
  if (lastNodeError instanceof Error) return lastNodeError.message
  if (Array.isArray(previousErrors) && previousErrors[0] instanceof Error) return previousErrors[0].message
  return undefined
}

/**
 * Redis's redirection of a command to another Cluster node. A client that
 * is not a Cluster client gets it when its URL names one node of a cluster.
 */
export const CLUSTER_REDIRECTION = /\bMOVED \d+ /

/**
 * Returns true for an error reply of Redis: a `ReplyError` of ioredis 5,
 * or a subclass of it, as the RESP3 errors of ioredis 6 are. Errors that
 * ioredis makes itself, such as "Command timed out", are no reply.
 */
export function isRedisErrorReply(error: unknown): boolean {
  for (let prototype = Object.getPrototypeOf(error); prototype !== null; prototype = Object.getPrototypeOf(prototype)) {
    const constructor = Object.hasOwn(prototype, 'constructor') ? (prototype.constructor as unknown) : undefined
    if (typeof constructor === 'function' && constructor.name === 'ReplyError') return true
  }
  return false
}

/**
 * Redis's echo of a rejected command, as Redis 6 and 7 reply to an unknown
 * command: "unknown command 'x', with args beginning with: 'a' 'b' ". A
 * request that Redis read out of step, or a renamed EVALSHA, puts pieces
 * of task records in it. Group 1 is the quote and group 2 the command name.
 * Redis replaces line breaks in the reply with spaces, so the echo ends at
 * the end of the line.
 */
const ARGUMENT_ECHO = /unknown command (['`])(.*?)\1, with args beginning with:[^\n]*/g

/** A command name as Redis's own commands are written, which the log may show. */
const COMMAND_NAME = /^[a-z][\w|.-]{0,31}$/i

/**
 * Returns `text` with the arguments that Redis echoes in an error reply
 * left out, and the command name too unless it reads as one, so that the
 * log gets no piece of a task record.
 */
export function hideArgumentEcho(text: string): string {
  return text.replace(ARGUMENT_ECHO, (_echo, quote: string, name: string) => {
    const quotedName = COMMAND_NAME.test(name) ? `${quote}${name}${quote}` : '(name not logged)'
    return `unknown command ${quotedName} (arguments not logged)`
  })
}
