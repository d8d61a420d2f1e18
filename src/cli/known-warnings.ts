/**
 * Keeps a known ioredis warning off the reader's output. During an outage
 * of a whole Redis Cluster, ioredis from 5.8 (seen with 5.11.1) re-selects
 * the Cluster's subscriber on every retry and adds a `close` listener to
 * the socket of the one it drops each time. Node then prints a
 * MaxListenersExceededWarning for that socket within seconds
 * (redis/ioredis issue 2030, open). The warning says nothing a user can
 * act on, and `live` would keep it in its footer. Other warnings print as
 * before.
 */
import { Socket } from 'node:net'

/** Wraps the `warning` listeners present now, Node's printer among them, so that they skip that warning. */
export function skipClusterSubscriberWarning(): void {
  for (const listener of process.listeners('warning')) {
    process.off('warning', listener)
    process.on('warning', (warning) => {
      if (!isClusterSubscriberWarning(warning)) listener(warning)
    })
  }
}

function isClusterSubscriberWarning(warning: Error): boolean {
  const leak = warning as Error & { emitter?: unknown; type?: unknown }
  return leak.name === 'MaxListenersExceededWarning' && leak.emitter instanceof Socket && leak.type === 'close'
}
