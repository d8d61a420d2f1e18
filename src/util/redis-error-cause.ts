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
