/**
 * The shared tracker: tasks of any number of processes and hosts in one
 * Redis, in the layout the Python Top Framework reads.
 *
 * Writes never wait on Redis. The request path appends to an in-memory
 * batch; all writes of one event-loop turn go to Redis as one EVALSHA.
 * Pending and in-flight writes share a fixed byte budget: past it, writes
 * are dropped and counted rather than queued without limit.
 */
import Redis, { Cluster, type RedisOptions } from 'ioredis'
import { requireCount } from '../errors'
import { formatIsoTime } from '../task/time'
import { createRateLimitedLogger, silentLogger, type Logger } from '../util/logger'
import { createRedisKeys, escapeGlob, type RedisKeys } from './redis-keys'
import { APPLY_BATCH_SCRIPT, REMOVE_PROCESSORS_SCRIPT } from './redis-scripts'
import { addSkip, buildSnapshot } from './snapshot'
import type { ReadOptions, TaskSnapshot, TaskUpdateListener, Tracker, TrackerStats } from './tracker'

export type RedisClient = Redis | Cluster

export interface RedisTrackerOptions {
  /**
   * Redis URL (`redis://`, `rediss://`, with user, password and database).
   * Ignored when `client` is given.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string
  /**
   * An ioredis client or Cluster to use. The tracker does not close a
   * client it was given.
   */
  client?: RedisClient
  /**
   * Prepended to every key and channel name. Leave empty to stay readable by
   * the Python tools.
   * @default ''
   */
  keyPrefix?: string
  /**
   * Most completed tasks kept in `past_tasks`.
   * @default 256
   */
  maxCompletedTasks?: number
  /**
   * Memory budget for writes waiting for Redis, in bytes. Writes past it are dropped.
   * @default 8 MiB
   */
  maxPendingBytes?: number
  /** Where connection problems and dropped writes are reported, at most once per 30 s each. */
  logger?: Logger
}

const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024

/** Bytes counted for one operation besides its JSON: operation, processor id, bookkeeping. */
const OPERATION_OVERHEAD_BYTES = 64

/** Max time `flush()` waits for a connection attempt under way, in milliseconds. */
const FLUSH_CONNECT_WAIT_MS = 2_000

/** ioredis statuses of a client whose connection attempt is under way. */
const CONNECTING_STATUSES = new Set(['connecting', 'connect'])

/** Most array items (three per operation) sent in one EVALSHA, to keep argument lists small. */
const MAX_BATCH_ITEMS = 3 * 1000

type ApplyBatch = (
  processorsKey: string,
  pastTasksKey: string,
  ...args: Array<string | number>
) => Promise<number>

type RemoveProcessors = (processorsKey: string, pattern: string) => Promise<number>

interface ScriptedClient {
  webTopApplyBatch: ApplyBatch
  webTopRemoveProcessors: RemoveProcessors
}

export class RedisTracker implements Tracker {
  readonly kind = 'redis'
  readonly keys: RedisKeys
  readonly client: RedisClient

  readonly #ownsClient: boolean
  readonly #maxCompleted: number
  readonly #maxPendingBytes: number
  readonly #logger: Logger
  readonly #url: string

  /** Flattened triples (operation, processor id, JSON) not yet sent. */
  #batch: string[] = []
  #batchBytes = 0
  #inFlightBytes = 0
  #flushScheduled = false
  #inFlight = new Set<Promise<unknown>>()

  /** Active tasks of this process, kept to repair the hash after a lost write. */
  readonly #active = new Map<string, string>()
  /** Processor ids this process has written and may have to repair. */
  readonly #knownProcessors = new Set<string>()
  #needsRepair = false

  #written = 0
  #dropped = 0
  #closed = false

  constructor(options: RedisTrackerOptions = {}) {
    this.keys = createRedisKeys(options.keyPrefix)
    this.#maxCompleted = requireCount('maxCompletedTasks', options.maxCompletedTasks ?? 256)
    this.#maxPendingBytes = requireCount(
      'maxPendingBytes',
      options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES,
    )
    this.#logger = createRateLimitedLogger(options.logger ?? silentLogger)
    this.#url = redactUrl(options.url ?? 'redis://127.0.0.1:6379')

    if (options.client) {
      this.client = options.client
      this.#ownsClient = false
    } else {
      this.client = new Redis(options.url ?? 'redis://127.0.0.1:6379', WRITER_CLIENT_OPTIONS)
      this.#ownsClient = true
    }
    defineScripts(this.client)

    this.client.on('error', this.#onClientError)
    this.client.on('ready', this.#onClientReady)
    this.client.on('close', this.#onClientClose)
  }

  /** The URL the tracker connects to, with any password masked. */
  get url(): string {
    return this.#url
  }

  recordStart(processorId: string, taskJson: string): void {
    this.#active.set(processorId, taskJson)
    this.#knownProcessors.add(processorId)

    if (!this.#reserve(taskJson.length)) {
      this.#dropped++
      return
    }
    this.#enqueue('s', processorId, taskJson)
  }

  recordEnd(processorId: string, taskJson: string): void {
    this.#active.delete(processorId)

    if (this.#reserve(taskJson.length)) {
      this.#enqueue('e', processorId, taskJson)
      return
    }

    // The completed record is dropped, but the active entry must still go,
    // or a finished request would stay in `processors`.
    this.#dropped++
    this.#needsRepair = true
    this.#scheduleFlush()
  }

  async removeProcessors(processorIdPrefix: string): Promise<number> {
    const pattern = `${escapeGlob(processorIdPrefix)}*`
    return (this.client as unknown as ScriptedClient).webTopRemoveProcessors(
      this.keys.processors,
      pattern,
    )
  }

  async read(options: ReadOptions = {}): Promise<TaskSnapshot> {
    const limit = Math.max(0, options.completedLimit ?? this.#maxCompleted)
    // LRANGE 0 -1 reads the whole list, so a limit of 0 reads the empty range 1..0.
    const [first, last] = limit === 0 ? [1, 0] : [0, limit - 1]
    const results = await this.client
      .multi()
      .hgetall(this.keys.processors)
      .lrange(this.keys.pastTasks, first, last)
      .get(this.keys.lastClearedAt)
      .exec()

    const [processorsResult, pastTasksResult, clearedResult] = results ?? []
    const processors = readReply(processorsResult)
    const pastTasks = readReply(pastTasksResult)
    const cleared = readReply(clearedResult)

    const snapshot = buildSnapshot(
      processors.ok ? Object.entries(processors.value as Record<string, string>) : [],
      pastTasks.ok ? (pastTasks.value as string[]) : [],
      cleared.ok && typeof cleared.value === 'string' ? cleared.value : null,
    )
    if (!processors.ok) addSkip(snapshot, `key ${this.keys.processors}: ${processors.reason}`)
    if (!pastTasks.ok) addSkip(snapshot, `key ${this.keys.pastTasks}: ${pastTasks.reason}`)
    return snapshot
  }

  async subscribe(listener: TaskUpdateListener): Promise<() => Promise<void>> {
    const subscriber = duplicateForSubscribe(this.client)
    subscriber.on('error', this.#onClientError)
    subscriber.on('message', (_channel: string, message: string) => listener(message))
    await subscriber.subscribe(this.keys.taskUpdates)

    return async () => {
      subscriber.disconnect()
    }
  }

  async clear(): Promise<void> {
    await this.client
      .multi()
      .del(this.keys.processors, this.keys.pastTasks)
      .set(this.keys.lastClearedAt, formatIsoTime(Date.now()))
      .exec()
  }

  /**
   * Sends the pending writes and waits until they are applied or dropped.
   * When a connection attempt is under way, waits up to 2 s for it first,
   * so that writes made just after startup are not lost on a quick close.
   */
  async flush(): Promise<void> {
    const pending = this.#batch.length > 0 || this.#needsRepair
    if (pending && CONNECTING_STATUSES.has(this.client.status)) {
      await this.#waitForConnection(FLUSH_CONNECT_WAIT_MS)
    }
    this.#sendBatch()
    while (this.#inFlight.size > 0) {
      await Promise.allSettled([...this.#inFlight])
    }
  }

  stats(): TrackerStats {
    return {
      written: this.#written,
      dropped: this.#dropped,
      pendingBytes: this.#batchBytes + this.#inFlightBytes,
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true

    await this.flush()
    this.client.off('error', this.#onClientError)
    this.client.off('ready', this.#onClientReady)
    this.client.off('close', this.#onClientClose)

    if (!this.#ownsClient) return
    // Errors while closing are not the app's business: log and move on.
    this.client.on('error', () => {})
    await this.client.quit().catch(() => this.client.disconnect())
  }

  /** Resolves when the client is ready, its connection attempt failed, or `timeoutMs` passed. */
  #waitForConnection(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.client.off('ready', done)
        this.client.off('close', done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      this.client.once('ready', done)
      this.client.once('close', done)
    })
  }

  /** Reserves room for one write in the byte budget. Returns false when it is used up or the tracker is closed. */
  #reserve(jsonLength: number): boolean {
    if (this.#closed) return false

    const bytes = jsonLength + OPERATION_OVERHEAD_BYTES
    if (this.#batchBytes + this.#inFlightBytes + bytes > this.#maxPendingBytes) {
      this.#reportDrop()
      return false
    }
    this.#batchBytes += bytes
    return true
  }

  #enqueue(operation: 's' | 'e', processorId: string, taskJson: string): void {
    this.#batch.push(operation, processorId, taskJson)
    this.#scheduleFlush()
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(this.#flushBatch)
  }

  readonly #flushBatch = (): void => {
    this.#flushScheduled = false
    this.#sendBatch()
  }

  #sendBatch(): void {
    if (this.client.status !== 'ready') return // sent again from the `ready` handler
    if (this.#needsRepair) this.#prependRepair()

    while (this.#batch.length > 0) {
      const chunk = this.#batch.length <= MAX_BATCH_ITEMS ? this.#batch : this.#batch.slice(0, MAX_BATCH_ITEMS)
      this.#batch = chunk === this.#batch ? [] : this.#batch.slice(MAX_BATCH_ITEMS)
      this.#sendChunk(chunk)
    }
  }

  #sendChunk(chunk: string[]): void {
    let bytes = 0
    for (let i = 2; i < chunk.length; i += 3) bytes += (chunk[i] as string).length + OPERATION_OVERHEAD_BYTES
    this.#batchBytes -= bytes
    this.#inFlightBytes += bytes

    const operations = chunk.length / 3
    const applyBatch = (this.client as unknown as ScriptedClient).webTopApplyBatch
    const sent: Promise<void> = applyBatch
      .call(this.client, this.keys.processors, this.keys.pastTasks, this.keys.taskUpdates, this.#maxCompleted, ...chunk)
      .then(
        () => {
          this.#written += operations
        },
        (err: unknown) => {
          this.#dropped += operations
          this.#needsRepair = true
          this.#logger.warn({ err, operations, url: this.#url }, 'redis write failed, records dropped')
        },
      )
      .finally(() => {
        this.#inFlightBytes -= bytes
        this.#inFlight.delete(sent)
      })
    this.#inFlight.add(sent)
  }

  /**
   * Puts the processors hash back in line with this process's active tasks
   * after a write was lost: the batch starts by deleting every processor id
   * this process used and setting its active ones again. Waits while the
   * byte budget has no room for it.
   */
  #prependRepair(): void {
    const repair: string[] = []
    let bytes = 0

    for (const processorId of this.#knownProcessors) {
      const active = this.#active.get(processorId)
      repair.push(active === undefined ? 'd' : 'a', processorId, active ?? '')
      bytes += (active?.length ?? 0) + OPERATION_OVERHEAD_BYTES
    }
    if (this.#batchBytes + this.#inFlightBytes + bytes > this.#maxPendingBytes) return

    for (const processorId of this.#knownProcessors) {
      if (!this.#active.has(processorId)) this.#knownProcessors.delete(processorId)
    }
    this.#needsRepair = false
    this.#batchBytes += bytes
    // Queued operations come after the repair, so they still apply in order.
    this.#batch = repair.concat(this.#batch)
  }

  #reportDrop(): void {
    this.#logger.warn(
      { dropped: this.#dropped + 1, maxPendingBytes: this.#maxPendingBytes, url: this.#url },
      'redis is not keeping up, task records dropped',
    )
  }

  readonly #onClientReady = (): void => {
    this.#needsRepair = this.#needsRepair || this.#knownProcessors.size > 0
    this.#sendBatch()
  }

  readonly #onClientClose = (): void => {
    // Anything in flight on the lost connection may or may not have applied.
    if (!this.#closed) this.#needsRepair = true
  }

  readonly #onClientError = (err: Error): void => {
    this.#logger.warn({ err, url: this.#url }, 'redis connection error')
  }
}

/**
 * Client options for the writer: fail fast instead of queueing while
 * disconnected (the tracker keeps its own bounded batch), never resend
 * writes of a lost connection (the tracker repairs instead), and reconnect
 * forever with a backoff capped at 2 s.
 */
const WRITER_CLIENT_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 5_000,
  retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
}

/**
 * Opens a second connection for SUBSCRIBE, which takes over the connection
 * it runs on. The writer's options turn the offline queue off, but the
 * SUBSCRIBE sent right away must wait for the new connection.
 */
function duplicateForSubscribe(client: RedisClient): RedisClient {
  if (client instanceof Cluster) return client.duplicate([], { enableOfflineQueue: true })
  return client.duplicate({ enableOfflineQueue: true })
}

function defineScripts(client: RedisClient): void {
  const scripted = client as unknown as Partial<ScriptedClient>
  if (typeof scripted.webTopApplyBatch !== 'function') {
    client.defineCommand('webTopApplyBatch', { numberOfKeys: 2, lua: APPLY_BATCH_SCRIPT })
  }
  if (typeof scripted.webTopRemoveProcessors !== 'function') {
    client.defineCommand('webTopRemoveProcessors', { numberOfKeys: 1, lua: REMOVE_PROCESSORS_SCRIPT })
  }
}

type Reply = { ok: true; value: unknown } | { ok: false; reason: string }

function readReply(result: [Error | null, unknown] | undefined): Reply {
  if (result === undefined) return { ok: false, reason: 'no reply' }
  const [err, value] = result
  if (err) return { ok: false, reason: err.message.startsWith('WRONGTYPE') ? 'wrong key type' : err.message }
  return { ok: true, value }
}

/** Returns a Redis URL with its password replaced by `***`, safe to log. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@')
  }
}
