/**
 * The stream of task updates (`task_updates`) that `live` and `tail`
 * follow, with the state of its connection: a reader must know when the
 * stream was down, because updates published meanwhile are lost and have to
 * be read back from `past_tasks`.
 */
import type { Redis } from 'ioredis'
import { isCluster, RedisTracker } from '../trackers/redis-tracker'
import type { Tracker } from '../trackers/tracker'
import { isRedisErrorReply } from '../util/redis-error-cause'
import { describeError } from './cli-error'

export interface UpdateStreamHandlers {
  /** Called with the JSON text of each update. */
  onUpdate(json: string): void
  /**
   * Called once when the connection is lost, or Redis stops replying on it;
   * updates may be missing until `onSubscribed`. `sinceMs` is the time from
   * which they may be missing when that is earlier than the call.
   */
  onDisconnect(reason: string, sinceMs?: number): void
  /** Called when the subscription is in place again after `onDisconnect`. */
  onSubscribed(): void
}

export interface UpdateStream {
  close(): Promise<void>
}

/**
 * Subscribes to the tracker's updates. Returns undefined for a tracker that
 * publishes none (an HTTP tracker endpoint), whose readers poll instead.
 * Throws when the first subscription fails.
 */
export async function openUpdateStream(
  tracker: Tracker,
  handlers: UpdateStreamHandlers,
): Promise<UpdateStream | undefined> {
  if (tracker.kind === 'http') return undefined
  if (tracker instanceof RedisTracker && !isCluster(tracker.client)) {
    return openRedisStream(tracker.client, tracker.keys.taskUpdates, handlers)
  }
  const unsubscribe = await tracker.subscribe(handlers.onUpdate)
  if (tracker instanceof RedisTracker) return watchClient(tracker, unsubscribe, handlers)
  return { close: unsubscribe }
}

/** Milliseconds between the PINGs that check that Redis replies on the subscriber's connection. */
export const STREAM_PROBE_INTERVAL_MS = 2_000

/**
 * Time in ms a PING may go without a reply before the stream counts as
 * lost, as `live` shows a read without a reply after 3 s.
 */
export const STREAM_REPLY_TIMEOUT_MS = 3_000

/**
 * Subscribes on a connection of its own, which reconnects as the reader's
 * client does. The subscription is renewed by hand after each
 * reconnection, so `onSubscribed` comes only once the server has confirmed it.
 *
 * A Redis that is paused (SIGSTOP), overloaded or cut off by a network that
 * drops packets keeps the connection open and sends nothing, so no `close`
 * comes. A PING every `STREAM_PROBE_INTERVAL_MS` on the subscriber's
 * connection shows that: the stream counts as lost, from the time the PING
 * was sent, when it has no reply within `STREAM_REPLY_TIMEOUT_MS`, and as
 * back at the next reply. One PING at most is in flight, and the client's
 * `commandTimeout` (5 s in the CLI) ends one that never gets a reply.
 */
async function openRedisStream(
  client: Redis,
  channel: string,
  handlers: UpdateStreamHandlers,
): Promise<UpdateStream> {
  const subscriber = client.duplicate({ enableOfflineQueue: true, autoResubscribe: false })
  let subscribedOnce = false
  /** Whether the subscription is in place on the current connection. */
  let subscribed = false
  /** Whether `onDisconnect` reported the stream lost, and `onSubscribed` has not reported it back yet. */
  let lost = false
  let closed = false
  let probing = false
  let lastError: unknown

  const lose = (reason: string, sinceMs?: number) => {
    if (lost || closed) return
    lost = true
    handlers.onDisconnect(reason, sinceMs)
  }
  const regain = () => {
    if (!lost || !subscribed || closed) return
    lost = false
    lastError = undefined
    handlers.onSubscribed()
  }
  const probe = () => {
    if (probing || !subscribed || closed) return
    probing = true
    const sentMs = Date.now()
    const timer = setTimeout(() => {
      lose(`no reply to PING within ${STREAM_REPLY_TIMEOUT_MS / 1000} s`, sentMs)
    }, STREAM_REPLY_TIMEOUT_MS)
    timer.unref()
    subscriber
      .ping()
      // An error reply, such as a PING that an ACL forbids, is a reply too.
      .then(regain, (error: unknown) => {
        if (isRedisErrorReply(error)) regain()
      })
      .finally(() => {
        clearTimeout(timer)
        probing = false
      })
  }

  subscriber.on('error', (error: unknown) => {
    lastError = error
  })
  subscriber.on('message', (_channel: string, message: string) => handlers.onUpdate(message))
  subscriber.on('close', () => {
    if (!subscribed || closed) return
    subscribed = false
    lose(lastError === undefined ? 'connection closed' : describeError(lastError))
  })
  subscriber.on('ready', () => {
    // The first `ready` is awaited below; later ones follow a reconnection.
    if (!subscribedOnce || subscribed || closed) return
    subscriber.subscribe(channel).then(
      () => {
        if (closed || subscribed) return
        subscribed = true
        regain()
      },
      () => {
        // The connection dropped again before the server confirmed; the next `ready` retries.
      },
    )
  })

  try {
    await subscriber.subscribe(channel)
  } catch (error) {
    // The reader goes on without a stream, as when Redis rejects SUBSCRIBE
    // for the user, and this connection would stay open unused.
    closed = true
    subscriber.disconnect()
    throw error
  }
  subscribedOnce = true
  subscribed = true
  const probeTimer = setInterval(probe, STREAM_PROBE_INTERVAL_MS)
  probeTimer.unref()
  return {
    close: async () => {
      closed = true
      clearInterval(probeTimer)
      subscriber.disconnect()
    },
  }
}

/** Milliseconds between the PINGs that check a Cluster's stream, and the time each may take. */
const CLUSTER_PROBE_INTERVAL_MS = 2_000

/**
 * Follows the connection of a Redis client other than a single-server one
 * (a Cluster), whose subscriber ioredis renews by itself. When every node
 * stops, ioredis 5.11 leaves the Cluster's status at `ready` and emits no
 * `close` (checked with a 6-node test cluster), so a PING every 2 s shows
 * whether the cluster still replies. The stream counts as down from the
 * first PING that fails or takes longer than that, and as back at the
 * next one that succeeds.
 * NOTE: the PING goes through the main client, not the subscriber's
 * connection. A stream counted as back may still be resubscribing, and
 * messages published meanwhile are missed; an outage of the subscriber's
 * node alone is not seen.
 */
function watchClient(
  tracker: RedisTracker,
  unsubscribe: () => Promise<void>,
  handlers: UpdateStreamHandlers,
): UpdateStream {
  let connected = true
  let probing = false
  const lose = (reason: string) => {
    if (!connected) return
    connected = false
    handlers.onDisconnect(reason)
  }
  const regain = () => {
    if (connected) return
    connected = true
    handlers.onSubscribed()
  }
  const onClose = () => lose('connection closed')
  const probe = async () => {
    if (probing) return
    probing = true
    try {
      await pingWithin(tracker.client, CLUSTER_PROBE_INTERVAL_MS)
      regain()
    } catch (error) {
      lose(describeError(error))
    } finally {
      probing = false
    }
  }
  const timer = setInterval(() => void probe(), CLUSTER_PROBE_INTERVAL_MS)
  timer.unref()
  tracker.client.on('close', onClose)
  tracker.client.on('ready', regain)
  return {
    close: async () => {
      clearInterval(timer)
      tracker.client.off('close', onClose)
      tracker.client.off('ready', regain)
      await unsubscribe()
    },
  }
}

/** Sends PING and rejects when it fails or has no reply within `timeoutMs`. */
async function pingWithin(client: RedisTracker['client'], timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no reply to PING within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    await Promise.race([client.ping(), timeout])
  } finally {
    clearTimeout(timer)
  }
}
