/**
 * The shared tracker: tasks of any number of processes and hosts in one
 * Redis, in the layout the Python Top Framework reads.
 *
 * Writes never wait on Redis. The request path appends to an in-memory
 * batch, and the writes of each batch window go to Redis as one EVALSHA, on
 * one connection, so Redis applies them in the order they were made. A
 * request that starts and ends within one window is sent as one operation
 * that never touches `processors` (redis-batch.ts).
 * Pending and in-flight writes share a fixed byte budget: past it, writes
 * are dropped and counted rather than queued without limit. After any lost
 * write the tracker repairs the processors hash from what it knows.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { invalidOptionRange, invalidOptionType, invalidTrackerUrl, invalidUsage, requireCount } from '../errors'
import type { CleanupOutcome } from '../task/cleanup-end'
import { formatIsoTime } from '../task/time'
import { settleWithin } from '../util/deadline'
import { DropLog } from '../util/drop-log'
import { createRateLimitedLogger, guardLogger, silentLogger, type Logger, type RateLimitedLogger } from '../util/logger'
import { maskUrl } from '../util/mask-url'
import { CLUSTER_REDIRECTION, findRedisErrorCause, isRedisErrorReply } from '../util/redis-error-cause'
import { DEFAULT_MAX_COMPLETED_TASKS } from './completed-cap'
import type { DecodeCache } from './decode-cache'
import type { Heartbeat, HeartbeatReport, PruneResult } from './heartbeat'
import {
  ITEMS_PER_OPERATION,
  OPERATION_OVERHEAD_BYTES,
  operationBytes,
  WriteBatch,
  type BatchChunk,
  type Operation,
  type PendingStart,
} from './redis-batch'
import { createLuaScript, runFramedScript, type ScriptCallGuard, type ScriptSendMode } from './framed-script'
import { MismatchDiagnosis, type ProtocolMismatch } from './protocol-mismatch'
import { FIELD_LENGTHS_COMMAND, isScriptRejected, readChangedActive, type ChangedActive } from './redis-changed-read'
import { isSentinelUrl, requireClusterHashTag, validateServerUrl } from './redis-connection'
import { pruneRedisStaleTasks, readRedisHeartbeats } from './redis-heartbeats'
import {
  createHeartbeatKeys,
  createRedisKeys,
  escapeGlob,
  type HeartbeatKeys,
  type RedisKeys,
} from './redis-keys'
import {
  APPLY_BATCH_SCRIPT,
  FIELD_LENGTHS_SCRIPT,
  PRUNE_STALE_SCRIPT,
  REMOVE_PROCESSORS_SCRIPT,
  WRITE_HEARTBEAT_SCRIPT,
} from './redis-scripts'
import { addActiveKeySkip, addKeySkip, buildSnapshot } from './snapshot'
import type { CloseOptions, ReadOptions, TaskSnapshot, TaskUpdateListener, Tracker, TrackerStats } from './tracker'
import { isNotAppliedError, isReadonlyError, RetryQueue } from './write-retry'
import { requireTrimmedUrl } from './tracker-url'
import { WRITE_SEQUENCE_TTL_MS, WriteSequence } from './write-sequence'

export type RedisClient = Redis | Cluster

/**
 * A `Redis` or `Cluster` of ioredis 6, which web-top takes as well as those
 * of its own ioredis 5. Private members make the classes of the two
 * versions incompatible types, so this lists only the members that
 * web-top checks on a client it is given.
 */
export interface Ioredis6Client {
  readonly isCluster: boolean
  defineCommand(...args: never[]): unknown
  duplicate(...args: never[]): unknown
}

/** A client that an app hands to web-top: of ioredis 5 or 6. */
export type GivenRedisClient = RedisClient | Ioredis6Client

/**
 * Returns true for an ioredis `Cluster`. Reads the `isCluster` field that
 * ioredis 5 and 6 set on every client, because a client that the app made
 * with its own copy of ioredis is no instance of web-top's `Cluster` class.
 */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true
}

/**
 * Option key, for web-top's own modules, that hands a `client` over to the
 * tracker. The tracker then suspends, reconnects and closes that client as
 * one it opened. createTrackerFromUrl sets it for the Cluster and Sentinel
 * clients it creates. The package does not export the symbol, so apps
 * cannot set it.
 */
export const OWNS_CLIENT: unique symbol = Symbol('web-top owns the client')

/**
 * Option key, for web-top's own modules, that gives the tracker of a
 * Cluster client a check of the cluster (`diagnoseCluster`), which it runs
 * after a failed write to log the node or slot at fault.
 * createTrackerFromUrl sets it for the Cluster clients it creates.
 */
export const DIAGNOSE_CLUSTER: unique symbol = Symbol('web-top cluster diagnosis')

export interface RedisTrackerOptions {
  /** See `OWNS_CLIENT`. */
  [OWNS_CLIENT]?: boolean
  /** See `DIAGNOSE_CLUSTER`. */
  [DIAGNOSE_CLUSTER]?: (() => Promise<string | undefined>) | undefined
  /**
   * Redis URL (`redis://`, `rediss://`, with user, password and database).
   * Ignored when `client` is given.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string | undefined
  /**
   * An ioredis client or Cluster to use. The tracker does not close a
   * client it was given. With a Cluster, `keyPrefix` must contain a hash
   * tag such as `{shop}:`. Clients of ioredis 5 and 6 both work.
   */
  client?: GivenRedisClient | undefined
  /**
   * Prepended to every key and channel name. Leave empty to stay readable by
   * the Python tools.
   * @default ''
   */
  keyPrefix?: string | undefined
  /**
   * Most completed tasks kept in `past_tasks`.
   * @default 256
   */
  maxCompletedTasks?: number | undefined
  /**
   * Memory budget for task records waiting for Redis, in bytes: the JSON
   * of every record queued or sent and not yet confirmed, plus 64 bytes per
   * record. Records past it are dropped and counted in `stats().dropped`.
   * Note: records in flight also stay in memory as ioredis commands, so the
   * heap grows by somewhat more than this: by 2.8 MiB for a 2 MiB budget in
   * test/paused-redis-load.test.ts.
   * @default 8 MiB
   */
  maxPendingBytes?: number | undefined
  /**
   * How long writes collect before they go to Redis as one script call, in
   * milliseconds. A request that starts and ends within one window is sent
   * as one operation and never gets an entry in `processors` (its start and
   * end are still published). 0 sends the writes of each event-loop turn
   * (`setImmediate`). A batch that reaches 1000 operations is sent at once.
   * Each script call costs this process 19 to 95 µs of CPU and Redis 15 to
   * 65 µs besides the records (bench/micro.ts, 1 against 50 requests per
   * call, on two 2-core VMs). Under load, though, longer windows cost the
   * server more: a Fastify server spent 33.0 µs per request at 2 ms and
   * 43.2 µs at 10 ms, and its p99 rose from 1.9 to 4.1 times the
   * baseline's (bench/README.md). Readers see requests at most 2 ms later.
   * @default 2
   */
  batchWindowMs?: number | undefined
  /** Logger for connection problems and dropped records. */
  logger?: Logger | undefined
  /**
   * Min time between two log lines about the same connection problem, in
   * milliseconds. Dropped records are summed and logged once per interval.
   * @default 30_000
   */
  logIntervalMs?: number | undefined
}

const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024

const DEFAULT_LOG_INTERVAL_MS = 30_000

/** Time before the cluster is checked again after a failed write when the last check found no fault. */
const CLUSTER_CHECK_RETRY_MS = 5_000

const CLUSTER_FAULT_MESSAGE = "redis cluster cannot serve the tracker's keys"

/**
 * Errors of ioredis and Redis Cluster after which a node or a slot may be
 * down, which the check of the cluster can name. Others, such as OOM or a
 * denied command, come from a node that serves the slot.
 */
const CLUSTER_LAYOUT_ERROR =
  /CLUSTERDOWN|TRYAGAIN|\bMOVED\b|\bASK\b|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes|Cluster isn't ready|Connection is closed/

/** Message of the log lines that count dropped records. */
const DROP_MESSAGE =
  'task records dropped (a request has two, its start and its end): redis was unreachable or slow, ' +
  'or rejected a write (logged apart with its reason)'

/** Time before a repair that Redis rejected is sent again without a new write, in milliseconds. */
const REPAIR_RETRY_MS = 1_000

/** Max time `flush()` waits for a connection attempt under way, in milliseconds. */
const FLUSH_CONNECT_WAIT_MS = 2_000

/**
 * Max time reads and other commands wait for the connection before they
 * fail, in milliseconds: the writer's connect timeout.
 */
const COMMAND_CONNECT_WAIT_MS = 5_000

const DEFAULT_BATCH_WINDOW_MS = 2

/** Maximum batch window accepted, in milliseconds. */
const MAX_BATCH_WINDOW_MS = 1_000

/**
 * Time without a reply to a write after which the tracker logs that Redis
 * stalls, in milliseconds: the writer's connect timeout. Records wait in
 * memory meanwhile, within `maxPendingBytes`.
 */
const STALL_WARNING_MS = 5_000

/**
 * Time without a rejected write after which a successful write counts as
 * the end of a period of rejections, in milliseconds. Under OOM some
 * batches still go through (those whose first command frees memory), so a
 * single success does not mean that Redis takes writes again.
 */
const WRITES_RECOVERED_AFTER_MS = 2_000

const STALL_MESSAGE = 'redis has not replied to a write for 5 s or more; records wait in memory within maxPendingBytes'

/**
 * The line for a connection that opened but has not become ready, as with
 * a Redis that is frozen or overloaded when the app starts: no error comes,
 * so nothing else reports it.
 */
const NOT_READY_MESSAGE =
  'redis accepted the connection but has not become ready for 5 s or more; records wait in memory within ' +
  'maxPendingBytes. Check that the server at this URL is a Redis that answers'

/**
 * How long `flush()` keeps sending again the writes that Redis rejected
 * without running them, such as during a Cluster failover, in ms: more than
 * a failover with the default cluster-node-timeout of 15 s takes.
 */
const FLUSH_RETRY_MS = 20_000

/** Pause of `flush()` between two sends of rejected writes, in milliseconds. */
const FLUSH_RETRY_PAUSE_MS = 250

/** First and longest wait before connecting again after a connection ended by itself, in milliseconds. */
const ENDED_RECONNECT_FIRST_MS = 100
const ENDED_RECONNECT_MAX_MS = 2_000

/**
 * Age in ms past which a write in flight after rejections counts as
 * unanswered rather than about to be rejected again, for the give-up line.
 * Redis replies BUSY or READONLY at once, so 1 s leaves room for a loaded machine.
 */
const REJECTION_REPLY_MS = 1_000

/** Max time `close()` and `suspend()` wait for writes in flight, and then for QUIT, in ms. */
const CLOSE_WAIT_MS = 2_000

/**
 * Max time `suspend()` waits in all for Redis to reply to the writes in
 * flight, in milliseconds. Past it, a paused or frozen Redis, which keeps
 * the connection open, would keep the process alive for ever, so the
 * tracker counts those records as dropped and closes the connection.
 */
const SUSPEND_REPLY_WAIT_MS = 8_000

/** Start of the line that counts the records `suspend()` gave up on. */
const GIVEN_CLIENT_ENDED_MESSAGE =
  'the Redis client given to web-top has ended (the app quit or disconnected it, or its retryStrategy stopped), ' +
  'so records wait in memory up to maxPendingBytes and count as dropped when the tracker goes idle or closes, ' +
  'unless the client connects again; quit the client only after the recorder has closed'

const CLOSED_WRITE_MESSAGE =
  'a task record reached a closed redis tracker and was dropped; close a tracker you give to web-top ' +
  'only after the middleware or plugin that writes to it has closed'

const IDLE_GIVE_UP_MESSAGE = 'redis tracker went idle after its servers closed, before it could write every record'

/** ioredis statuses of a client whose connection attempt is under way. */
const CONNECTING_STATUSES = new Set(['connecting', 'connect'])

/** ioredis statuses of a client that becomes ready by itself once Redis accepts connections. */
const RECONNECTING_STATUSES = new Set(['connecting', 'connect', 'reconnecting'])

/** Most array items sent in one EVALSHA, to keep argument lists small: 1000 operations. */
const MAX_BATCH_ITEMS = ITEMS_PER_OPERATION * 1000

/** The batch script, sent through `runFramedScript`: its calls are the large ones. */
const APPLY_BATCH = createLuaScript(APPLY_BATCH_SCRIPT)
const SEQUENCE_TTL_ARGUMENT = String(WRITE_SEQUENCE_TTL_MS)

/** A removal of `queueRemoveProcessors()`, as the repair needs it. */
interface Removal {
  endedAt: string
  outcome: CleanupOutcome
  /** Its `m` operations still waiting in the batch. */
  queued: number
  /** Whether Redis applied the latest `m` sent. */
  applied: boolean
  /** Whether requests of the prefix were in flight, whose entries the removal ends. */
  endsEntries: boolean
}

type RemoveProcessors = (
  processorsKey: string,
  pastTasksKey: string,
  pattern: string,
  channel: string,
  maxCompleted: number,
  endedAt: string,
  outcome: CleanupOutcome,
) => Promise<number>

type WriteHeartbeat = (
  key: string,
  listKey: string,
  json: string,
  ttlMs: number,
  prefix: string,
) => Promise<number>

interface ScriptedClient {
  webTopRemoveProcessors: RemoveProcessors
  webTopWriteHeartbeat: WriteHeartbeat
}

export class RedisTracker implements Tracker {
  readonly kind = 'redis'
  readonly keys: RedisKeys
  readonly heartbeatKeys: HeartbeatKeys
  readonly client: RedisClient

  readonly #ownsClient: boolean
  readonly #maxCompleted: number
  readonly #batchWindowMs: number
  /** `0` on a Cluster, whose other nodes' subscribers the script cannot count (redis-scripts.ts). */
  readonly #maySkipPublish: '0' | '1'
  #maxPendingBytes: number
  readonly #logger: RateLimitedLogger
  readonly #dropLog: DropLog
  readonly #url: string
  /**
   * The protocol mismatch checks of a client made here from a single-server
   * URL. A client passed in has no URL to probe.
   */
  readonly #mismatchDiagnosis: MismatchDiagnosis | undefined
  /**
   * The first mismatch line of each kind (`ProtocolMismatch.kind`) in this
   * outage, which 'redis connection restored' ends. At most
   * `MAX_MISMATCH_KINDS` entries.
   */
  readonly #mismatchMessages = new Map<string, string>()
  /** The socket of the latest connection whose error was logged as a mismatch. */
  #mismatchSocket: unknown

  /** Writes not sent yet. */
  readonly #batch = new WriteBatch()
  /** Batches that Redis rejected without running them, sent again before the others. */
  readonly #retries = new RetryQueue(() => this.#sendBatch())
  /**
   * Batches in flight when their connection closed, which Redis may or may
   * not have run, sent again first on the next connection with their
   * sequence numbers, one at a time (write-sequence.ts).
   */
  #unconfirmed: BatchChunk[] = []
  #unconfirmedBytes = 0
  /**
   * The batch of `#unconfirmed` sent again and waiting for its reply.
   * Nothing else is sent meanwhile: a batch with a higher number that ran
   * first would make Redis skip this one, although it may not have run.
   */
  #resending: BatchChunk | undefined
  /**
   * Whether the next batch call sends the whole script (EVAL), as the first
   * call on each connection and the first after a NOSCRIPT reply do. The
   * EVALSHA calls after it on the connection then find the script, and no
   * call waits for a NOSCRIPT reply to be sent as EVAL, after later calls.
   */
  #loadScript = true
  /** Undefined on a Cluster, whose client may write a call again on its own (README, Known limitations). */
  readonly #sequence: WriteSequence | undefined
  #inFlightBytes = 0
  /** Records in the batches sent that Redis has not replied to yet. */
  #inFlightRecords = 0
  /** When each write in flight was sent, oldest first: one connection replies in order. */
  readonly #sentAt: number[] = []
  /** Timer of `#retryRepairLater()`. */
  #repairRetryTimer: NodeJS.Timeout | undefined
  /** When the heartbeat write in flight of each prefix was sent, so that a stall shows without traffic. */
  readonly #heartbeatSentAt = new Map<string, number>()
  /** When the unanswered write that was logged as stalled was sent, until Redis replies. */
  #stallReportedFor: number | undefined
  /** When the connection error that was logged happened, until the connection is ready again. */
  #connectionLostAt: number | undefined
  /** Since when records wait for a connection that is not ready, until it is. */
  #notReadySince: number | undefined
  /** When Redis accepted the current connection (ioredis `connect`), until it is ready or closes. */
  #acceptedAt: number | undefined
  /** Whether the wait of `#notReadySince` was logged. */
  #notReadyReported = false
  #flushScheduled = false
  #inFlight = new Set<Promise<unknown>>()
  /**
   * Ends each batch in flight as failed. ioredis never settles a command
   * whose connection closed before the reply when it does not resend it
   * (`autoResendUnfulfilledCommands: false`), so the tracker does, on `close`.
   */
  readonly #failInFlight = new Set<(err: Error) => void>()

  /** Active tasks of this process, kept to repair the hash after a lost write. */
  readonly #active = new Map<string, string>()
  /** Processor ids this process has written and may have to repair. */
  readonly #knownProcessors = new Set<string>()
  /** Removals queued by `queueRemoveProcessors()`, by pattern, which repairs carry out again. */
  readonly #removals = new Map<string, Removal>()
  /** The removals each chunk sent carries, for a chunk sent again. */
  readonly #chunkRemovals = new WeakMap<BatchChunk, Removal[]>()
  #needsRepair = false

  /** Per heartbeat prefix: when its last confirmed write was sent, or 0 while one is in flight. */
  readonly #heartbeatConfirmedAt = new Map<string, number>()
  /** Per heartbeat prefix: when the last write that Redis confirmed was sent, and its TTL. */
  readonly #heartbeatStoredAt = new Map<string, { at: number; ttlMs: number }>()
  /** Whether the next send has the `k` operation after a heartbeat came back late. */
  #checkStoppedOnce = false
  /** Chunks sent with the `k` operation, which keep it when they are sent again. */
  readonly #chunksCheckingStopped = new WeakSet<BatchChunk>()
  /** The latest heartbeat of each prefix made while the connection was not ready. */
  readonly #waitingHeartbeats = new Map<string, { heartbeat: Heartbeat; ttlMs: number }>()

  /** True once Redis rejected the light read's script, so reads fetch every record. */
  #changedReadRejected = false
  /** Set by the first READONLY reply on a connection, until that connection closes (`#reconnectOnReadonly`). */
  #reconnectAsked = false
  /** When `#reconnectNow()` last started a connection attempt. */
  #reconnectedNowAt = 0
  /** Wait before connecting again after the next `end`: 0 for the first, reset once a connection is ready. */
  #endedReconnectMs = 0

  #written = 0
  #dropped = 0
  #closed = false
  readonly #diagnoseCluster: (() => Promise<string | undefined>) | undefined
  /** Earliest time of the next cluster diagnosis (`#logClusterFault`), so that an outage does not probe the nodes at every failed write. */
  #nextClusterDiagnosisMs = 0
  readonly #logIntervalMs: number
  /**
   * True once `close()` gave up on the writes it waited for. Until then a
   * closing tracker still sends rejected batches again and logs failures.
   */
  #closeWaitOver = false
  /** True after `suspend()` closed the connection; the next write reconnects. */
  #suspended = false
  /**
   * True from QUIT until the connection ends. ioredis still reports such a
   * connection as `ready`, but rejects every command sent on it.
   */
  #quitting = false
  /**
   * The reason writes wait: the server rejected the SELECT of the URL's
   * database on the current connection. Undefined while the database is usable.
   */
  #databaseError: string | undefined
  /**
   * The socket that `suspend()` left open but unreferenced, so that it does
   * not keep the process alive. The next write references it again.
   */
  #parkedSocket: { ref(): unknown; unref(): unknown } | undefined
  /**
   * True when the tracker stopped ioredis's reconnection: of a parked
   * connection that dropped, or by suspending between two attempts. ioredis
   * then stays `reconnecting` with no retry planned, so the next write must
   * connect.
   */
  #retriesStopped = false
  /** True when `suspend()` found writes in flight: the last of them to end suspends. */
  #suspendWhenSent = false
  /** Ends the wait of `#suspendWhenSent` after `SUSPEND_REPLY_WAIT_MS`. */
  #replyWaitTimer: NodeJS.Timeout | undefined
  /**
   * The records and removals of the batches that `#failAllInFlight()`
   * fails while it runs, which it logs in one line, and whether it keeps
   * them to send again (`#unconfirmed`).
   */
  #failingAll: { records: number; removals: string[]; keep: boolean; kept: number } | undefined
  /**
   * Since when Redis rejects writes with an error reply (OOM and the
   * like), the drop count then, and the time of the latest rejection,
   * until a write succeeds `WRITES_RECOVERED_AFTER_MS` after that.
   */
  #writesRejected: { since: number; droppedBefore: number; lastAt: number } | undefined
  /** The error of the latest batch that Redis rejected without running it, for the give-up line. */
  #lastRejection: string | undefined
  /**
   * Heartbeats that `removeHeartbeat()` could not remove because the
   * connection was not ready, which `close()` and `suspend()` remove once
   * their wait for the entries finds it ready.
   */
  readonly #heartbeatsToRemove = new Set<string>()
  /** Operations queued since the tracker was created, so that `suspend()` detects writes made while it waits. */
  #operationsQueued = 0
  /** The calls waiting for the connection, which share one listener per event on the client. */
  readonly #connectionWaits: ConnectionWaits

  constructor(options: RedisTrackerOptions = {}) {
    const givenClient = options.client as RedisClient | undefined
    if (givenClient !== undefined) {
      requireNoClientKeyPrefix(givenClient)
      requireOpenClient(givenClient)
    }
    if (givenClient !== undefined && isCluster(givenClient)) requireClusterHashTag(options.keyPrefix ?? '')
    this.keys = createRedisKeys(options.keyPrefix)
    this.heartbeatKeys = createHeartbeatKeys(options.keyPrefix)
    this.#maxCompleted = requireCount('maxCompletedTasks', options.maxCompletedTasks ?? DEFAULT_MAX_COMPLETED_TASKS)
    this.#maxPendingBytes = requireCount(
      'maxPendingBytes',
      options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES,
    )
    this.#batchWindowMs = resolveBatchWindow(options.batchWindowMs)
    const logIntervalMs = requireCount(
      'logIntervalMs',
      options.logIntervalMs ?? DEFAULT_LOG_INTERVAL_MS,
    )
    if (options.url !== undefined && givenClient === undefined) requireServerUrl(options.url)
    const logger = options.logger === undefined ? silentLogger : guardLogger(options.logger)
    this.#logger = createRateLimitedLogger(logger, logIntervalMs)
    this.#logIntervalMs = logIntervalMs
    this.#diagnoseCluster = options[DIAGNOSE_CLUSTER]
    this.#url = maskUrl(options.url ?? describeClient(givenClient))
    this.#dropLog = new DropLog(logger, logIntervalMs, DROP_MESSAGE, () => ({
      pendingBytes: this.#pendingBytes(),
      maxPendingBytes: this.#maxPendingBytes,
      url: this.#url,
    }))

    if (givenClient) {
      this.client = givenClient
      this.#ownsClient = options[OWNS_CLIENT] === true
      this.#mismatchDiagnosis = undefined
    } else {
      const url = options.url ?? 'redis://127.0.0.1:6379'
      this.client = new Redis(url, {
        ...WRITER_CLIENT_OPTIONS,
        reconnectOnError: this.#reconnectOnReadonly,
      })
      this.#ownsClient = true
      this.#mismatchDiagnosis = new MismatchDiagnosis(url, this.#onMismatchFound)
    }
    this.#maySkipPublish = isCluster(this.client) ? '0' : '1'
    this.#sequence = isCluster(this.client) ? undefined : new WriteSequence(options.keyPrefix)
    defineScripts(this.client)
    this.#connectionWaits = new ConnectionWaits(this.client)

    this.client.on('connect', this.#onClientConnect)
    this.client.on('error', this.#onClientError)
    this.client.on('ready', this.#onClientReady)
    this.client.on('close', this.#onClientClose)
    this.client.on('end', this.#onClientEnd)
  }

  /** The URL the tracker connects to, with any password masked. */
  get url(): string {
    return this.#url
  }

  /** The byte budget for records waiting for Redis (see `RedisTrackerOptions.maxPendingBytes`). */
  get maxPendingBytes(): number {
    return this.#maxPendingBytes
  }

  /** Changes the byte budget. Records already queued stay queued. */
  set maxPendingBytes(bytes: number) {
    this.#maxPendingBytes = requireCount('maxPendingBytes', bytes)
  }

  recordStart(processorId: string, taskJson: string): void {
    this.#active.set(processorId, taskJson)
    this.#knownProcessors.add(processorId)

    if (!this.#hasRoom(taskJson.length)) {
      this.#drop(1)
      return
    }
    this.#enqueue('s', processorId, taskJson, '')
  }

  recordEnd(processorId: string, taskJson: string): void {
    this.#active.delete(processorId)
    this.#batch.forgetPendingStart(processorId)

    if (this.#hasRoom(taskJson.length)) {
      this.#enqueue('e', processorId, taskJson, '')
      return
    }
    this.#dropEnd(1)
  }

  /**
   * Records a start given in parts (see `Tracker.recordStartFields`). With
   * `published` false (a request left out by sampling), the active entry is
   * stored but not published, and the end must come through
   * `recordDiscard()`.
   */
  recordStartFields(
    processorId: string,
    fixedFields: string,
    startFields: string,
    sharedFields: string,
    published: boolean,
  ): void {
    this.#active.set(processorId, `{${fixedFields},${startFields}${sharedFields}}`)
    this.#knownProcessors.add(processorId)

    if (!this.#hasRoom(fixedFields.length + startFields.length)) {
      this.#drop(1)
      return
    }
    this.#enqueue(published ? 's' : 'u', processorId, fixedFields, startFields, sharedFields)
  }

  /**
   * Records an end given in parts (see `Tracker.recordEndFields`). When the
   * start of the same request still waits in the batch, with the same
   * `fixedFields` and `sharedFields` strings, both go as one operation that
   * sends the fixed fields once and leaves `processors` alone.
   */
  recordEndFields(processorId: string, fixedFields: string, endFields: string, sharedFields: string): void {
    this.#active.delete(processorId)
    const start = this.#batch.takePendingStart(processorId, fixedFields)

    if (start !== undefined) {
      if (start.published && start.sharedIndex === this.#batch.sharedNumber(sharedFields)) {
        this.#mergeWithStart(start, fixedFields, endFields, sharedFields)
        return
      }
      // An unpublished start need not be written at all once its request ended.
      if (!start.published) this.#batch.cancelAt(start.index)
    }

    if (this.#hasRoom(fixedFields.length + endFields.length)) {
      this.#enqueue('e', processorId, fixedFields, endFields, sharedFields)
      return
    }
    this.#dropEnd(1)
  }

  recordDiscard(processorId: string): void {
    this.#active.delete(processorId)
    if (this.#batch.cancelPendingStart(processorId)) return

    if (this.#hasRoom(0)) {
      this.#enqueue('d', processorId, '', '')
      return
    }
    this.#needsRepair = true
    this.#scheduleFlush()
  }

  queueRemoveProcessors(processorIdPrefix: string, outcome: CleanupOutcome = 'recorder_closed'): void {
    let endsEntries = false
    for (const processorId of this.#knownProcessors) {
      if (!processorId.startsWith(processorIdPrefix)) continue
      this.#knownProcessors.delete(processorId)
      endsEntries = this.#active.delete(processorId) || endsEntries
    }
    if (this.#closed) return

    const pattern = `${escapeGlob(processorIdPrefix)}*`
    const endedAt = formatIsoTime(Date.now())
    const previous = this.#removals.get(pattern)
    const queued = (previous?.queued ?? 0) + 1
    // A removal not applied yet may still have entries to end.
    endsEntries ||= previous !== undefined && !previous.applied && previous.endsEntries
    this.#removals.set(pattern, { endedAt, outcome, queued, applied: false, endsEntries })
    // Queued past the budget: the removal is small, and losing it would leave entries behind.
    this.#enqueue('m', pattern, endedAt, outcome)
  }

  async removeProcessors(processorIdPrefix: string, outcome: CleanupOutcome = 'recorder_closed'): Promise<number> {
    await this.#requireConnection('remove processors')
    const pattern = `${escapeGlob(processorIdPrefix)}*`
    return (this.client as unknown as ScriptedClient).webTopRemoveProcessors(
      this.keys.processors,
      this.keys.pastTasks,
      pattern,
      this.keys.taskUpdates,
      this.#maxCompleted,
      formatIsoTime(Date.now()),
      outcome,
    )
  }

  /**
   * Reads the active and completed tasks. With `changedOnly` and a
   * `decodeCache`, fetches only the active records that are new to the
   * cache or changed length, and the slice that `verifySlices` verifies
   * (redis-changed-read.ts). When the server rejects the script that this
   * needs, logs it once and reads everything from then on.
   */
  async read(options: ReadOptions = {}): Promise<TaskSnapshot> {
    const limit = Math.max(0, options.completedLimit ?? this.#maxCompleted)
    await this.#requireConnection('read tasks')
    const cache = options.decodeCache
    const changed =
      options.changedOnly === true && cache !== undefined
        ? await this.#readChangedActive(cache, options.verifySlices ?? 0, options.maxRecordBytes)
        : undefined

    // Records come as Buffers, so that a cache passed in `options` compares
    // their bytes and decodes only the changed ones. HGETALL goes through
    // `callBuffer` under its upper-case name, which ioredis 5.11 does not
    // match to its `hgetall` reply transformer, so the reply stays a flat
    // array instead of an object of 10,000 keys. With 10,000 records of
    // 1.4 KB this fetch took about a third of the CPU of `hgetall` with
    // strings (bench/reader.ts). A light read has fetched its active
    // records already.
    // A read without completed tasks leaves past_tasks alone, so it does not
    // report a problem of that key, which a reader counts with the completed tasks.
    const transaction = this.client.multi()
    if (changed === undefined) transaction.callBuffer('HGETALL', this.keys.processors)
    if (limit > 0) transaction.lrangeBuffer(this.keys.pastTasks, 0, limit - 1)
    transaction.get(this.keys.lastClearedAt)
    const results = [...((await transaction.exec()) ?? [])]
    const processors = changed === undefined ? readReply(results.shift()) : undefined
    const pastTasks: Reply = limit > 0 ? readReply(results.shift()) : { ok: true, value: [] }
    const cleared = readReply(results.shift())

    const snapshot = buildSnapshot(
      changed?.fetched ?? (processors?.ok === true ? readHashEntries(processors.value) : []),
      pastTasks.ok ? (pastTasks.value as Buffer[]) : [],
      cleared.ok && typeof cleared.value === 'string' ? cleared.value : null,
      cache,
      changed?.reusedIds,
      changed?.listing,
      options.maxRecordBytes,
    )
    if (processors?.ok === false) addActiveKeySkip(snapshot, `key ${this.keys.processors}: ${processors.reason}`)
    if (!pastTasks.ok) addKeySkip(snapshot, `key ${this.keys.pastTasks}: ${pastTasks.reason}`)
    if (!cleared.ok && cleared.reason === WRONG_KEY_TYPE) snapshot.wrongTypeKeys = [this.keys.lastClearedAt]
    return snapshot
  }

  /**
   * Fetches the active records that are new to `cache` or changed length
   * (redis-changed-read.ts). Returns undefined when only a full read can
   * list them, or once the server rejected the script this needs, which is
   * logged once.
   */
  async #readChangedActive(
    cache: DecodeCache,
    verifySlices: number,
    maxRecordBytes: number | undefined,
  ): Promise<ChangedActive | undefined> {
    if (this.#changedReadRejected) return undefined
    try {
      return await readChangedActive(this.client, this.keys.processors, cache, verifySlices, maxRecordBytes)
    } catch (err) {
      // A processors key of another type: a full read reports it as skipped.
      if (err instanceof Error && err.message.startsWith('WRONGTYPE')) return undefined
      if (!isScriptRejected(err)) throw err
      this.#changedReadRejected = true
      this.#logger.warn(
        { err, url: this.#url },
        'redis rejected the script that lists field lengths, so every read fetches all records from now on; grant +evalsha and +eval to read less',
      )
      return undefined
    }
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

  /**
   * Deletes the active and completed tasks, then stores the time of the
   * clear for readers. Two commands rather than one transaction: a Redis
   * at its `maxmemory` rejects the SET until the DEL has freed memory, and
   * in a transaction that rejection would discard the DEL too.
   */
  async clear(): Promise<void> {
    await this.#requireConnection('clear tasks')
    await this.client.del(this.keys.processors, this.keys.pastTasks)
    await this.client.set(this.keys.lastClearedAt, formatIsoTime(Date.now()))
  }

  /**
   * Sends the pending writes and waits until they are applied or dropped.
   * When a connection attempt is under way, waits up to 2 s for it first,
   * so that writes made just after startup are not lost on a quick close.
   * Writes that Redis rejected without running them (write-retry.ts) are
   * sent again for up to `FLUSH_RETRY_MS`, after which they stay queued.
   * Note: while Redis is frozen, writes in flight get no reply, and this
   * waits until Redis replies or the connection closes.
   */
  async flush(): Promise<void> {
    const pending = !this.#batch.isEmpty || this.#needsRepair
    if (pending) await this.#awaitConnection()
    const retryUntil = Date.now() + FLUSH_RETRY_MS
    for (;;) {
      this.#retries.stopWaiting()
      this.#sendBatch()
      while (this.#inFlight.size > 0) {
        await Promise.allSettled([...this.#inFlight])
      }
      if (this.#retries.isEmpty || !this.#isWritable() || Date.now() >= retryUntil) return
      await new Promise((resolve) => setTimeout(resolve, FLUSH_RETRY_PAUSE_MS))
      // Once `suspend()` or `close()` gave up on the rejected batches, sending again would keep the process alive.
      if (this.#suspended || this.#closeWaitOver) return
    }
  }

  stats(): TrackerStats {
    return {
      written: this.#written,
      dropped: this.#dropped,
      pendingBytes: this.#pendingBytes(),
    }
  }

  writeHeartbeat(heartbeat: Heartbeat, ttlMs: number): void {
    if (this.#closed) return
    this.#heartbeatsToRemove.delete(heartbeat.processor_id_prefix)
    // Heartbeats come every few seconds, so a stall is logged without traffic too.
    this.#checkStall()
    this.#resume()
    if (!this.#isWritable()) {
      // Sent from the `ready` handler, so that a new process shows up at once.
      this.#waitingHeartbeats.set(heartbeat.processor_id_prefix, { heartbeat, ttlMs })
      return
    }

    const prefix = heartbeat.processor_id_prefix
    const previous = this.#heartbeatConfirmedAt.get(prefix)
    if (previous === 0) return

    this.#heartbeatConfirmedAt.set(prefix, 0)
    const sentAt = Date.now()
    this.#heartbeatSentAt.set(prefix, sentAt)
    const answered = (replied: boolean) => {
      this.#heartbeatSentAt.delete(prefix)
      if (replied) this.#reportStallEnd()
    }
    const writeHeartbeat = (this.client as unknown as ScriptedClient).webTopWriteHeartbeat
    writeHeartbeat
      .call(
        this.client,
        this.heartbeatKeys.heartbeatPrefix + prefix,
        this.heartbeatKeys.heartbeats,
        JSON.stringify(heartbeat),
        ttlMs,
        prefix,
      )
      .then(
        () => {
          answered(true)
          this.#onHeartbeatWritten(prefix, previous, ttlMs, sentAt)
        },
        (err: unknown) => {
          answered(isRedisErrorReply(err))
          this.#heartbeatConfirmedAt.set(prefix, previous ?? Date.now())
          // close() and suspend() end the connection, which fails the write: their own lines report what they gave up on.
          if (!this.#closed && !this.#suspended) this.#logger.warn({ err, url: this.#url }, 'redis heartbeat write failed')
        },
      )
  }

  async removeHeartbeat(processorIdPrefix: string): Promise<void> {
    // Without a write sent, as when Redis was never reachable, Redis has no heartbeat to remove.
    const sent = this.#heartbeatConfirmedAt.delete(processorIdPrefix)
    this.#heartbeatStoredAt.delete(processorIdPrefix)
    this.#waitingHeartbeats.delete(processorIdPrefix)
    if (!sent) return
    // Just after Redis dropped the connection, the next attempt is one wait away: start it now.
    if (!this.#isWritable() && this.#mayReconnect()) {
      this.#reconnectNow()
      await this.#waitForConnection(FLUSH_CONNECT_WAIT_MS)
      // A request that woke the recorder meanwhile wrote a heartbeat, which must stay.
      if (this.#waitingHeartbeats.has(processorIdPrefix) || this.#heartbeatConfirmedAt.has(processorIdPrefix)) return
    }
    if (!this.#isWritable()) {
      // The wait of close() or suspend() for the entries may find Redis back.
      this.#heartbeatsToRemove.add(processorIdPrefix)
      return
    }
    await this.#deleteHeartbeat(processorIdPrefix)
  }

  /** Deletes a heartbeat and its member of the heartbeats set, and throws with the reason when Redis rejects it. */
  async #deleteHeartbeat(processorIdPrefix: string): Promise<void> {
    this.#heartbeatsToRemove.delete(processorIdPrefix)
    try {
      await this.client
        .multi()
        .del(this.heartbeatKeys.heartbeatPrefix + processorIdPrefix)
        .srem(this.heartbeatKeys.heartbeats, processorIdPrefix)
        .exec()
    } catch (err) {
      // EXECABORT names only the discarded transaction, so the reason is the error of the first command rejected.
      const reason = findRedisErrorCause(err) ?? (err instanceof Error ? err.message : String(err))
      throw new Error(
        `web-top: Failed to remove the heartbeat of ${processorIdPrefix} from Redis at ${this.#url}: ${reason}`,
        { cause: err },
      )
    }
  }

  async readHeartbeats(): Promise<HeartbeatReport> {
    await this.#requireConnection('read heartbeats')
    return readRedisHeartbeats(this.client, this.heartbeatKeys)
  }

  async pruneStaleTasks(): Promise<PruneResult> {
    await this.#requireConnection('prune stale tasks')
    return pruneRedisStaleTasks(this.client, this.keys, this.heartbeatKeys, this.#maxCompleted)
  }

  /**
   * Sends pending writes, then lets a process whose servers closed exit:
   * the connection the tracker opened stays open but no longer keeps the
   * process alive, or closes until the next write on a Cluster or while
   * Redis is unreachable. Keeps the connection as it is when new writes
   * arrived meanwhile. When writes are still in flight after 2 s, the last
   * reply suspends. Without replies for 8 s in all, the tracker gives up on
   * those writes and closes the connection. A given client stays open,
   * but the records queued for one that the app ended count as dropped.
   */
  async suspend(): Promise<void> {
    if (this.#closed || this.#suspended) return
    const startedAt = Date.now()
    const queuedBefore = this.#operationsQueued
    await this.#sendWithin(CLOSE_WAIT_MS)
    await this.#removeWaitingHeartbeats(startedAt + CLOSE_WAIT_MS)
    // Writes made during the wait mean that the app serves requests again.
    if (this.#operationsQueued !== queuedBefore) return
    this.#deleteSequenceKey()
    // Drops summed for the log's interval would be lost if the process exits now.
    this.#dropLog.flush()
    // A suspend() that waited at the same time may have suspended already.
    // Closing the connection once per call would add a socket listener per call.
    if (this.#closed || this.#suspended) return
    if (!this.#ownsClient) {
      // A given client that the app ended (quit, disconnect) never sends the queued records.
      if (this.client.status === 'end') this.#giveUpUnwritten(IDLE_GIVE_UP_MESSAGE, 'all')
      return
    }

    // Writes in flight keep a working connection. Other writes would be
    // lost when the process exits, so they are counted as dropped instead.
    // These are the batches that Redis rejected for the whole wait (BUSY,
    // READONLY and the like), and any write on a connection that cannot
    // take writes (Redis unreachable, a failed AUTH or SELECT). The reconnect timer
    // then no longer keeps the process alive. A repair that Redis keeps
    // rejecting would hold the connection for ever, so it waits for the
    // next write.
    const writable = this.#isWritable()
    this.#giveUpUnwritten(IDLE_GIVE_UP_MESSAGE, writable ? 'queued' : 'all')
    if (writable && this.#inFlight.size > 0) {
      this.#suspendWhenSent = true
      this.#stopWaitingForReplies()
      const waitMs = Math.max(0, startedAt + SUSPEND_REPLY_WAIT_MS - Date.now())
      // The socket keeps the process alive while writes are in flight, not the timer.
      this.#replyWaitTimer = setTimeout(this.#giveUpOnReplies, waitMs).unref()
      return
    }
    this.#suspended = true
    // Test runners such as supertest close a server after each request;
    // keeping the socket spares a reconnection for every one of them.
    const socket = !isCluster(this.client) && this.client.status === 'ready' ? this.client.stream : undefined
    if (socket !== undefined && typeof socket.unref === 'function') {
      socket.unref()
      this.#parkedSocket = socket
      return
    }
    await this.#quit()
  }

  /**
   * Gives up on the writes in flight that Redis has not replied to within
   * `SUSPEND_REPLY_WAIT_MS` of `suspend()`, and closes the connection, so
   * that the process can exit. The next write connects again.
   */
  readonly #giveUpOnReplies = (): void => {
    this.#replyWaitTimer = undefined
    if (!this.#suspendWhenSent || this.#closed) return
    this.#suspendWhenSent = false
    this.#giveUpUnwritten(IDLE_GIVE_UP_MESSAGE, 'all')
    this.#suspended = true
    void this.#quit(true)
  }

  #stopWaitingForReplies(): void {
    clearTimeout(this.#replyWaitTimer)
    this.#replyWaitTimer = undefined
  }

  /**
   * Sends the pending writes, waiting at most `waitMs` (2 s by default)
   * for those in flight, and closes the connection if the tracker opened
   * it. Writes after close are dropped.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stopWaitingForReplies()

    const waitMs = options.waitMs ?? CLOSE_WAIT_MS
    const deadline = Date.now() + waitMs
    await this.#sendWithin(waitMs)
    await this.#removeWaitingHeartbeats(deadline)
    this.#dropLog.flush()
    const writesStuck = this.#inFlight.size > 0
    this.#closeWaitOver = true
    this.#giveUpUnwritten('redis tracker closed before it could write every record', 'all')
    this.#deleteSequenceKey()
    this.client.off('connect', this.#onClientConnect)
    this.client.off('error', this.#onClientError)
    this.client.off('ready', this.#onClientReady)
    this.client.off('close', this.#onClientClose)
    this.client.off('end', this.#onClientEnd)

    if (!this.#ownsClient) return
    // Errors while closing are not the app's business.
    this.client.on('error', () => {})
    await this.#quit(writesStuck)
  }

  /**
   * Sends the pending writes for up to `waitMs`, for `close()` and
   * `suspend()`, which give up on what is left afterwards. Unlike
   * `flush()`, waits for Redis to come back too while records wait.
   */
  async #sendWithin(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs
    for (;;) {
      await settleWithin(this.flush(), deadline - Date.now())
      const remainingMs = deadline - Date.now()
      if (remainingMs <= 0 || !this.#hasWritesToWaitFor()) return
      if (this.#isWritable() || !this.#mayReconnect()) return
      this.#reconnectNow()
      await this.#waitForConnection(Math.min(remainingMs, FLUSH_RETRY_PAUSE_MS), true)
    }
  }

  /**
   * Returns true while records wait to be sent, a removal that ends the
   * entries of requests in flight (`queueRemoveProcessors()`) waits, or a
   * heartbeat that `removeHeartbeat()` could not remove does. The removal
   * and the heartbeat carry no record, but would stay behind.
   */
  #hasWritesToWaitFor(): boolean {
    if (this.#batch.records + this.#retries.records + this.#unconfirmedRecords() > 0) return true
    if (this.#heartbeatsToRemove.size > 0) return true
    for (const removal of this.#removals.values()) {
      if (removal.endsEntries && !removal.applied) return true
    }
    return false
  }

  /**
   * Deletes the writer's sequence key when no batch is in flight or waits
   * to be sent again, so that an idle or closed tracker does not leave it
   * for its TTL. A batch sent later stores it again.
   */
  #deleteSequenceKey(): void {
    if (this.#sequence === undefined || !this.#isWritable()) return
    if (this.#inFlight.size > 0 || this.#unconfirmed.length > 0) return
    const key = this.#sequence.key
    this.client.del(key).catch((err: unknown) => {
      // Only a denied DEL is logged: the key expires in any case, and other failures fail the writes too, which log them.
      if (!(err instanceof Error) || !err.message.startsWith('NOPERM')) return
      this.#logger.warn(
        { err, key, url: this.#url },
        `redis rejected DEL of the write sequence key, which stays until its ${WRITE_SEQUENCE_TTL_MS / 60_000} minute TTL ends; let the Redis user run DEL`,
      )
    })
  }

  /** Returns the patterns of the removals that end entries of requests in flight and that Redis has not applied. */
  #unappliedRemovals(): string[] {
    const patterns: string[] = []
    for (const [pattern, removal] of this.#removals) {
      if (removal.endsEntries && !removal.applied) patterns.push(pattern)
    }
    return patterns
  }

  /**
   * Removes the heartbeats of `#heartbeatsToRemove` when the connection is
   * ready, waiting for the replies until `deadline`. A heartbeat left is
   * the same as one of a process that ended without its cleanup.
   */
  async #removeWaitingHeartbeats(deadline: number): Promise<void> {
    if (this.#heartbeatsToRemove.size > 0 && this.#isWritable()) {
      const removals = [...this.#heartbeatsToRemove].map((prefix) => this.#deleteHeartbeat(prefix))
      await settleWithin(Promise.allSettled(removals), deadline - Date.now())
    }
    if (this.#heartbeatsToRemove.size === 0) return
    this.#logger.warn(
      { processorIdPrefixes: [...this.#heartbeatsToRemove], url: this.#url },
      'redis tracker could not remove the heartbeat of this process, because Redis was not reachable: ' +
        'readers list the process as running until the heartbeat expires (heartbeatTtlMs)',
    )
  }

  /** Returns true when the connection can become ready within a wait, and then take writes. */
  #mayReconnect(): boolean {
    const status = this.client.status
    const reconnects = RECONNECTING_STATUSES.has(status) || (status === 'end' && this.#ownsStandaloneClient())
    return reconnects && !this.#retriesStopped && !this.#quitting && this.#databaseError === undefined
  }

  /**
   * Starts a connection attempt now on a connection the tracker opened,
   * when ioredis waits between two attempts (up to 2 s) or has stopped.
   * Without this, Redis could be back during the wait of `#sendWithin()`
   * and see no attempt before the wait ends.
   */
  #reconnectNow(): void {
    const status = this.client.status
    if (!this.#ownsStandaloneClient() || (status !== 'reconnecting' && status !== 'end')) return
    // Each server close waits on its own, and supertest closes one per
    // request: the waits share one attempt per FLUSH_RETRY_PAUSE_MS.
    const now = Date.now()
    if (now - this.#reconnectedNowAt < FLUSH_RETRY_PAUSE_MS) return
    this.#reconnectedNowAt = now
    // disconnect() clears ioredis's timer. The attempt that follows ends
    // the client when it fails, rather than plan another.
    if (status === 'reconnecting') this.client.disconnect()
    this.#connect()
  }

  #ownsStandaloneClient(): boolean {
    return this.#ownsClient && !isCluster(this.client)
  }

  /**
   * Gives up on the writes not confirmed yet and counts their records in
   * `stats().dropped`. With `scope` 'all' that is every such write, as
   * when Redis is unreachable or paused. With 'queued' it is only those
   * not sent, such as the batches that Redis keeps rejecting. Records not
   * sent are lost. Records sent without a reply yet may or may not be
   * stored, because Redis may still run the write, so they are counted as
   * dropped too and a reply that comes later is ignored. Logs the counts
   * with `message` when there were any, once per log interval like other
   * repeated lines: a test suite that closes a server per request against
   * a misconfigured Redis would otherwise log a line per test.
   * `stats().dropped` counts every give-up.
   */
  #giveUpUnwritten(message: string, scope: 'all' | 'queued'): void {
    const reason = this.#explainUnwritten(scope)
    // A removal in flight may still apply, unless the tracker gives up on every write.
    const isGivenUp = (pattern: string) => scope === 'all' || (this.#removals.get(pattern)?.queued ?? 0) > 0
    const removals = this.#unappliedRemovals().filter(isGivenUp)
    let unsent = this.#retries.records
    // Batches of a lost connection, not sent again yet, may have run before it closed.
    const kept = this.#unconfirmedRecords()
    const queued = !this.#retries.isEmpty || !this.#batch.isEmpty || this.#unconfirmed.length > 0
    this.#retries.stopWaiting()
    this.#retries.take()
    this.#takeUnconfirmed()
    while (!this.#batch.isEmpty) unsent += this.#batch.takeChunk(MAX_BATCH_ITEMS).records
    this.#dropped += unsent + kept
    if (queued || scope === 'all') {
      // A removal given up on may not have applied, so the next repair sends it again.
      for (const removal of this.#removals.values()) removal.queued = 0
      if (this.#removals.size > 0) this.#needsRepair = true
    }
    const unconfirmed = (scope === 'all' ? this.#inFlightRecords : 0) + kept
    if (scope === 'all' && this.#failInFlight.size > 0) {
      const abandoned = new Error('the tracker stopped waiting for the reply, so the records may or may not be stored')
      this.#failAllInFlight(abandoned, false)
    }
    if (removals.length > 0) {
      this.#logger.warn(
        { processorIds: removals.join(', '), reason, url: this.#url },
        `${message}, so the entries of its requests in flight may stay in processors: readers show them ` +
          "as ORPHANED once the process's heartbeat expires, and `web-top-cli prune` ends them",
      )
    }
    if (unsent + unconfirmed === 0) return
    this.#logger.warn(
      { records: unsent + unconfirmed, unsent, unconfirmed, reason, url: this.#url },
      `${message}, so it counts them as dropped. Records not sent (unsent) are lost. ` +
        'Records sent without a reply (unconfirmed) may or may not be stored. A request has two records, ' +
        'its start and its end.',
    )
  }

  /**
   * Returns why records still wait when the tracker gives up on them, for
   * the log line of `#giveUpUnwritten()`: no reply, a connection that
   * cannot take writes, or batches that Redis kept rejecting.
   */
  #explainUnwritten(scope: 'all' | 'queued'): string {
    const oldest = this.#oldestWriteSentAt()
    // A batch sent again just before the give-up is in flight too, after a rejection rather than a lost reply.
    // Redis rejects at once, so one without a reply for longer has stopped replying since.
    const rejecting =
      this.#retries.isRejecting &&
      this.#lastRejection !== undefined &&
      (oldest === Infinity || Date.now() - oldest < REJECTION_REPLY_MS)
    if (scope === 'all' && this.#isWritable() && oldest !== Infinity && !rejecting) {
      return `redis has not replied to a write sent ${Date.now() - oldest} ms ago`
    }
    if (this.#databaseError !== undefined) return this.#databaseError
    if (!this.#isWritable()) return `the connection to redis cannot take writes (ioredis status ${this.client.status})`
    if (rejecting) return `redis kept rejecting writes without running them, the last one with: ${this.#lastRejection}`
    if (!this.#retries.isEmpty) return 'redis kept rejecting writes without running them (BUSY, LOADING, READONLY or the like)'
    return 'the wait for redis ended before every record was sent'
  }

  /**
   * Sends QUIT, or drops the connection when `writesStuck` (writes in
   * flight got no reply) or QUIT gets no reply within 2 s.
   */
  async #quit(writesStuck = this.#inFlight.size > 0): Promise<void> {
    if (this.client.status === 'end') return
    if (this.client.status === 'reconnecting') {
      // Between two attempts there is no connection to quit, and no `end`
      // event comes after disconnect().
      this.client.disconnect()
      this.#retriesStopped = true
      return
    }
    this.#quitting = true
    if (writesStuck) {
      this.client.disconnect()
      return
    }
    const quitting = this.client.quit().then(
      () => true,
      () => false,
    )
    const settled = await settleWithin(quitting, CLOSE_WAIT_MS)
    if (!settled || !(await quitting)) this.client.disconnect()
  }

  /**
   * Reconnects a suspended tracker, and waits up to 2 s for a connection
   * attempt under way. Commands sent before the connection is ready would
   * fail at once, because the writer's offline queue is off.
   */
  async #awaitConnection(): Promise<void> {
    this.#resume()
    if (this.#quitting || CONNECTING_STATUSES.has(this.client.status)) {
      await this.#waitForConnection(FLUSH_CONNECT_WAIT_MS)
    }
  }

  /**
   * Waits for a connection attempt under way, or for a reconnection, up to
   * 5 s, then rejects with an error naming the URL when the connection is
   * still not ready. A command sent before would fail with ioredis's
   * "Stream isn't writeable" error, because the writer's offline queue is off.
   */
  async #requireConnection(action: string): Promise<void> {
    this.#resume()
    if (!this.#isWritable() && !this.#closed && this.#databaseError === undefined) {
      await this.#waitForConnection(COMMAND_CONNECT_WAIT_MS)
    }
    if (this.#isWritable()) return

    if (this.#databaseError !== undefined) throw new Error(`web-top: Failed to ${action}: ${this.#databaseError}`)
    const state = this.#closed ? 'the tracker is closed' : `the connection is ${this.client.status}`
    throw new Error(
      `web-top: Failed to ${action}: Redis at ${this.#url} is not connected (${state}). ` +
        'Check that Redis is running and reachable at this URL.',
    )
  }

  /**
   * Resolves when the client is ready, its connection attempt failed, or
   * `timeoutMs` passed. With `untilReady`, and for a connection that QUIT
   * is closing, which ends first and is then opened again, only `ready`
   * ends the wait.
   */
  #waitForConnection(timeoutMs: number, untilReady = this.#quitting): Promise<void> {
    return this.#connectionWaits.wait(timeoutMs, untilReady)
  }

  /**
   * Returns true when a command sent now can reach Redis, in the database
   * of the URL: after a failed SELECT, ioredis goes on in database 0.
   */
  #isWritable(): boolean {
    return this.client.status === 'ready' && !this.#quitting && this.#databaseError === undefined
  }

  #resume(): void {
    this.#suspendWhenSent = false
    this.#stopWaitingForReplies()
    if (!this.#suspended) return
    this.#suspended = false
    this.#parkedSocket?.ref()
    this.#parkedSocket = undefined
    // While QUIT is still under way, the `end` handler reconnects instead.
    if (this.client.status === 'end' || this.#retriesStopped) {
      this.#retriesStopped = false
      this.#connect()
    }
  }

  /**
   * Connects a given client that was created with `lazyConnect` and is
   * still waiting for its first command, as ioredis would for any command.
   * The tracker sends nothing before the client is ready, so without this
   * no record would ever be written. Only records do it, not heartbeats,
   * so that an app that connects the client itself after setting web-top
   * up, before it serves requests, does not find it connecting already.
   */
  #connectIfWaiting(): void {
    if (this.client.status !== 'wait' || this.#closed) return
    this.#logger.info?.({ url: this.#url }, 'web-top connects the given Redis client, which has not connected yet (lazyConnect)')
    this.#connect()
  }

  #connect(): void {
    // A failed attempt is reported through the `error` event and retried by ioredis.
    this.client.connect().catch(() => {})
  }

  /** Replaces a waiting start by one `q` operation that writes the start and the end. */
  #mergeWithStart(start: PendingStart, fixedFields: string, endFields: string, sharedFields: string): void {
    this.#batch.cancelAt(start.index)
    // The merged operation weighs the start's bytes plus the end fields.
    if (!this.#hasRoom(fixedFields.length + start.tail.length + endFields.length)) {
      // Neither record was sent, so both are lost and nothing needs repair.
      this.#drop(2)
      return
    }
    this.#enqueue('q', fixedFields, start.tail, endFields, sharedFields)
  }

  /**
   * Returns whether one more write of `textLength` characters, plus the
   * overhead of an operation, fits in the byte budget. False once closed.
   */
  #hasRoom(textLength: number): boolean {
    if (this.#closed) {
      this.#logger.warn({ url: this.#url }, CLOSED_WRITE_MESSAGE)
      return false
    }
    const bytes = textLength + OPERATION_OVERHEAD_BYTES
    if (this.#pendingBytes() + bytes <= this.#maxPendingBytes) return true
    if (bytes > this.#maxPendingBytes) {
      // The drop line blames Redis, which has nothing to do with this one.
      this.#logger.warn(
        { recordBytes: bytes, maxPendingBytes: this.#maxPendingBytes, url: this.#url },
        'a task record is larger than maxPendingBytes, so it is dropped even while Redis is healthy: ' +
          'raise maxPendingBytes above the size of the largest records (8 MiB by default)',
      )
    }
    return false
  }

  /**
   * Schedules one more attempt at the repair after a rejected call, such as
   * an out-of-memory or read-only reply, so that finished requests do not
   * stay listed until the app writes again.
   */
  #retryRepairLater(): void {
    if (this.#repairRetryTimer !== undefined) return
    this.#repairRetryTimer = setTimeout(() => {
      this.#repairRetryTimer = undefined
      if (this.#needsRepair && this.#mayWake()) this.#scheduleFlush()
    }, REPAIR_RETRY_MS)
    this.#repairRetryTimer.unref()
  }

  /** Returns whether a write may schedule a flush: the tracker is neither closed nor going idle. */
  #mayWake(): boolean {
    return !this.#closed && !this.#suspendWhenSent && !this.#suspended
  }

  /** Bytes of the writes not sent yet, in flight, or waiting to be sent again. */
  #pendingBytes(): number {
    return this.#batch.bytes + this.#inFlightBytes + this.#retries.bytes + this.#unconfirmedBytes
  }

  #drop(count: number): void {
    if (count === 0) return
    this.#dropped += count
    if (!this.#closeWaitOver) this.#dropLog.add(count)
  }

  /**
   * Fails every batch in flight with `err` and counts its records as
   * dropped. With `report`, logs the failure once with the records of all
   * the batches, so that a connection lost with many batches in flight
   * shows its whole count, not that of the first batch.
   */
  #failAllInFlight(err: Error, report: boolean, keep = false): void {
    if (this.#failInFlight.size === 0) return
    const failing = { records: 0, removals: [] as string[], keep, kept: 0 }
    this.#failingAll = failing
    try {
      for (const fail of [...this.#failInFlight]) fail(err)
    } finally {
      this.#failingAll = undefined
    }
    if (!report || this.#closeWaitOver) return
    if (failing.kept > 0) {
      this.#logger.warn(
        { records: failing.kept, url: this.#url },
        'redis connection closed before Redis replied to some writes; they are sent again on the next ' +
          'connection, and Redis skips those it ran already',
      )
    }
    if (failing.records === 0 && failing.kept > 0) return
    if (failing.records > 0) this.#dropLog.add(failing.records)
    this.#logWriteFailure(err, failing.records, failing.removals)
  }

  #unconfirmedRecords(): number {
    let records = 0
    for (const chunk of this.#unconfirmed) records += chunk.records
    return records
  }

  /**
   * Keeps a batch that may have run, to send it again in the order of
   * sequence numbers: a batch that was being sent again goes back before
   * the ones still waiting.
   */
  #keepUnconfirmed(chunk: BatchChunk): void {
    let index = this.#unconfirmed.length
    while (index > 0 && (this.#unconfirmed[index - 1] as BatchChunk).sequence > chunk.sequence) index--
    this.#unconfirmed.splice(index, 0, chunk)
    this.#unconfirmedBytes += chunk.bytes
  }

  /** Takes the batches kept by `#failAllInFlight()`, oldest first. */
  #takeUnconfirmed(): BatchChunk[] {
    const chunks = this.#unconfirmed
    this.#unconfirmed = []
    this.#unconfirmedBytes = 0
    return chunks
  }

  /**
   * Drops an end record. The active entry must still go, or a finished
   * request would stay in `processors`, so the next batch repairs.
   */
  #dropEnd(count: number): void {
    this.#drop(count)
    this.#needsRepair = true
    this.#scheduleFlush()
  }

  #enqueue(operation: Operation, target: string, head: string, tail: string, shared = ''): void {
    this.#operationsQueued++
    this.#batch.push(operation, target, head, tail, shared)
    if (this.#batch.itemCount >= MAX_BATCH_ITEMS && this.#isWritable()) {
      this.#sendBatch()
      return
    }
    this.#scheduleFlush()
  }

  #scheduleFlush(): void {
    if (this.#suspended || this.#suspendWhenSent) this.#resume()
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    if (this.#batchWindowMs === 0) setImmediate(this.#flushBatch)
    else setTimeout(this.#flushBatch, this.#batchWindowMs)
  }

  readonly #flushBatch = (): void => {
    this.#flushScheduled = false
    this.#sendBatch()
  }

  #sendBatch(): void {
    if (this.#closeWaitOver) return
    this.#checkStall()
    if (!this.#isWritable()) {
      if (this.#batch.records > 0) {
        this.#notReadySince ??= Date.now()
        this.#connectIfWaiting()
      }
      return // sent again from the `ready` handler
    }
    if (this.#retries.isWaiting) return // sent when the batches to send again are
    if (this.#resending !== undefined) return // sent when its reply comes
    const checkStopped = this.#checkStoppedOnce || this.#mayHaveBeenPruned(Date.now())
    // Their sequence numbers are lower than any new one (write-sequence.ts).
    const unconfirmed = this.#unconfirmed.shift()
    if (unconfirmed !== undefined) {
      this.#unconfirmedBytes -= unconfirmed.bytes
      this.#resending = unconfirmed
      this.#sendChunk(unconfirmed, checkStopped)
      return
    }
    for (const chunk of this.#retries.take()) this.#sendChunk(chunk, checkStopped)
    if (this.#needsRepair) this.#prependRepair()

    while (!this.#batch.isEmpty) {
      const chunk = this.#batch.takeChunk(MAX_BATCH_ITEMS)
      if (chunk.items.length > 0) this.#sendChunk(chunk, checkStopped)
    }
    this.#checkStoppedOnce = false
  }

  /**
   * Sends one chunk. With `checkStopped`, and whenever the chunk is sent
   * again after it had it, the ends in it remove the prune records of
   * their tasks (the `k` operation).
   */
  #sendChunk(chunk: BatchChunk, checkStopped: boolean): void {
    const { items, bytes, records } = chunk
    const removals = this.#takeRemovals(chunk)
    if (checkStopped) this.#chunksCheckingStopped.add(chunk)
    // Every send gets a new number, a batch sent again after Redis rejected it unrun too, since later
    // ones may have run. Only a batch that may have run keeps its number, for Redis to recognize it.
    if (this.#sequence !== undefined && !chunk.mayHaveRun) chunk.sequence = this.#sequence.next()
    this.#inFlightBytes += bytes
    this.#inFlightRecords += records
    this.#sentAt.push(Date.now())
    const { processors, pastTasks, taskUpdates } = this.keys
    const args = [taskUpdates, String(this.#maxCompleted), this.#maySkipPublish]
    if (this.#sequence !== undefined) args.push('n', String(chunk.sequence), SEQUENCE_TTL_ARGUMENT, chunk.mayHaveRun ? '1' : '')
    if (this.#chunksCheckingStopped.has(chunk)) args.push('k', '', '', '')

    let settled = false
    // NOTE: a Cluster client follows redirections and closed connections with
    // the same call on its own. With a guard, a failover test lost records
    // it had counted as written (2 of 7 runs on a loaded machine, cause not
    // found). So a batch to a Cluster gets none and may still run twice (README, Known limitations).
    const guard: ScriptCallGuard | undefined = isCluster(this.client) ? undefined : { abandoned: false }
    // `replied` is false when the tracker or ioredis ends the write without a reply from Redis.
    let finish: (err: Error | undefined, replied?: boolean) => void = () => {}
    const sent = new Promise<void>((resolve) => {
      finish = (err, replied = false) => {
        if (settled) return
        settled = true
        // A given client may write the call again after a reconnection, when Redis may have run it already.
        if (guard !== undefined && err !== undefined && !replied) guard.abandoned = true
        this.#failInFlight.delete(finish)
        this.#inFlight.delete(sent)
        this.#inFlightBytes -= bytes
        this.#inFlightRecords -= records
        this.#sentAt.shift()
        if (replied) this.#reportStallEnd()
        const resent = this.#resending === chunk
        if (resent) this.#resending = undefined
        if (err === undefined) {
          for (const removal of removals) removal.applied = true
          this.#written += records
          this.#reportWritesRecovered()
          if (this.#retries.succeeded()) {
            this.#logger.warn({ url: this.#url }, 'redis applies writes again after rejecting some, which are kept and sent again')
          }
        } else if (!this.#closeWaitOver && isNotAppliedError(err) && chunk.mayHaveRun) {
          if (err.message.startsWith('NOSCRIPT')) this.#loadScript = true
          // Not run this time, but maybe before: it stays first, with its number.
          this.#keepUnconfirmed(chunk)
          this.#retries.holdBack()
          this.#lastRejection = findRedisErrorCause(err) ?? err.message
          this.#logger.warn({ err, records, url: this.#url }, 'redis did not apply a write, sending it again')
        } else if (!this.#closeWaitOver && isNotAppliedError(err)) {
          // Redis did not run the script. The repair after the retried
          // batches puts right an active entry that a later batch changed.
          if (err.message.startsWith('NOSCRIPT')) this.#loadScript = true
          this.#retries.add(chunk)
          this.#lastRejection = findRedisErrorCause(err) ?? err.message
          this.#needsRepair = true
          this.#logger.warn({ err, records, url: this.#url }, 'redis did not apply a write, sending it again')
          this.#logClusterFault(err)
        } else if (this.#failingAll?.keep === true && this.#pendingBytes() + bytes <= this.#maxPendingBytes) {
          // Sent again with the same sequence number, which Redis skips if it ran the batch.
          chunk.mayHaveRun = true
          this.#keepUnconfirmed(chunk)
          this.#failingAll.kept += records
          this.#needsRepair = true
        } else if (this.#failingAll !== undefined) {
          // Counted here, and logged by `#failAllInFlight()` for all the batches at once.
          this.#dropped += records
          this.#needsRepair = true
          this.#failingAll.records += records
          // Several chunks in flight may carry the same removal.
          for (const pattern of chunk.removals) {
            if (!this.#failingAll.removals.includes(pattern)) this.#failingAll.removals.push(pattern)
          }
        } else {
          // Redis rejected the write: the rejections last until a write succeeds.
          if (replied) {
            this.#writesRejected ??= { since: Date.now(), droppedBefore: this.#dropped, lastAt: 0 }
            this.#writesRejected.lastAt = Date.now()
          }
          this.#drop(records)
          this.#needsRepair = true
          if (!this.#closeWaitOver) this.#logWriteFailure(err, records, chunk.removals)
          this.#logClusterFault(err)
        }
        resolve()
        // The next batch waits for this reply. Sent now, it is in flight before a waiting flush() checks again.
        if (resent && !this.#retries.isWaiting) this.#sendBatch()
        // A repair that waited for the writes in flight goes after the last
        // of them, not with the next request's records. After a failure it
        // waits `REPAIR_RETRY_MS`, so that a Redis that rejects every call
        // gets no call per batch window. A tracker on its way to idle keeps
        // waiting, because a flush would wake it.
        else if (this.#needsRepair && this.#inFlight.size === 0 && this.#mayWake()) {
          if (err === undefined) this.#scheduleFlush()
          else this.#retryRepairLater()
        }
        if (this.#suspendWhenSent && this.#inFlight.size === 0 && this.#batch.isEmpty) {
          this.#suspendWhenSent = false
          this.#stopWaitingForReplies()
          void this.suspend()
        }
      }
    })
    this.#inFlight.add(sent)
    this.#failInFlight.add(finish)
    const { lastPrunedAt } = this.heartbeatKeys
    const keys =
      this.#sequence === undefined
        ? [processors, pastTasks, lastPrunedAt]
        : [processors, pastTasks, this.#sequence.key, lastPrunedAt]
    // A Cluster routes calls to several nodes, so it keeps the fallback to EVAL per call; its calls carry no number.
    let mode: ScriptSendMode = 'fallback'
    if (this.#sequence !== undefined) mode = this.#loadScript ? 'eval' : 'evalsha'
    this.#loadScript = false
    runFramedScript(this.client, APPLY_BATCH, keys, args.concat(items), guard, mode).then(
      (reply) => {
        this.#checkPublishError(reply)
        finish(undefined, true)
      },
      (err: unknown) => finish(explainWriteError(err), isRedisErrorReply(err)),
    )
  }

  /**
   * Logs a batch that failed and is not sent again, with the reason as
   * text for loggers that do not print errors. The error itself comes
   * along only when its message differs from the reason, so that a line
   * shows the reason once. A batch without records (removals or repairs)
   * is named by what it does instead.
   */
  #logWriteFailure(err: Error, records: number, removals: readonly string[]): void {
    const reason = findRedisErrorCause(err) ?? err.message
    const fields: Record<string, unknown> = reason === err.message ? {} : { err }
    Object.assign(fields, { reason, records, url: this.#url })
    if (records === 0) fields.write = describeRecordlessWrite(removals)
    if (CLUSTER_REDIRECTION.test(err.message)) fields.hint = CLUSTER_NODE_HINT
    if (PERMISSION_DENIED.test(err.message)) fields.hint = WRITER_ACL_HINT
    this.#logger.warn(fields, records > 0 ? WRITE_FAILED_DROPPED_MESSAGE : WRITE_FAILED_MESSAGE)
  }

  /**
   * Runs the check of the cluster (`DIAGNOSE_CLUSTER`) after a write that
   * failed on the cluster's layout (`CLUSTER_LAYOUT_ERROR`), and logs the
   * node or slot at fault, which the client's error, such as "Too many
   * Cluster redirections", does not name. It runs once per log interval
   * while it finds a fault, and every `CLUSTER_CHECK_RETRY_MS` while it
   * finds none.
   */
  #logClusterFault(err: Error): void {
    const diagnose = this.#diagnoseCluster
    if (diagnose === undefined || this.#closed || Date.now() < this.#nextClusterDiagnosisMs) return
    if (!CLUSTER_LAYOUT_ERROR.test(err.message)) return
    // One check at a time: the next time is set when this one ends.
    this.#nextClusterDiagnosisMs = Number.POSITIVE_INFINITY
    // The check catches its own errors, and the catch keeps any other failure from crashing the app.
    void diagnose()
      .catch(() => undefined)
      .then((fault) => {
        this.#nextClusterDiagnosisMs = Date.now() + (fault === undefined ? CLUSTER_CHECK_RETRY_MS : this.#logIntervalMs)
        if (fault !== undefined && !this.#closed) this.#logger.warn({ reason: fault, url: this.#url }, CLUSTER_FAULT_MESSAGE)
      })
  }

  /**
   * Logs once that a write succeeded after Redis rejected some, with the
   * records dropped since the first rejection, so that the log does not
   * end on a failure that is over. A success within
   * `WRITES_RECOVERED_AFTER_MS` of a rejection is not yet logged as one.
   */
  #reportWritesRecovered(): void {
    const rejected = this.#writesRejected
    if (rejected === undefined || Date.now() - rejected.lastAt < WRITES_RECOVERED_AFTER_MS) return
    this.#writesRejected = undefined
    this.#logger.infoRecovery(
      { failedMs: Date.now() - rejected.since, dropped: this.#dropped - rejected.droppedBefore, url: this.#url },
      'redis takes writes again after rejecting some',
      [WRITE_FAILED_DROPPED_MESSAGE, WRITE_FAILED_MESSAGE],
    )
  }

  /** Logs the PUBLISH error that the batch script returns, when there is one (redis-scripts.ts). */
  #checkPublishError(reply: unknown): void {
    const reason = Array.isArray(reply) ? reply[1] : undefined
    if (typeof reason !== 'string' || reason === '') return
    this.#logger.warn(
      { reason, channel: this.keys.taskUpdates, url: this.#url },
      'redis rejected PUBLISH, so live views and tail get no updates; records are still stored. ' +
        'Let the Redis user run PUBLISH',
    )
  }

  /**
   * Logs once when the oldest write in flight has had no reply for
   * `STALL_WARNING_MS`. A paused or overloaded Redis keeps the connection
   * open, so no connection error reports it.
   */
  #checkStall(): void {
    this.#checkNotReady()
    const oldest = this.#oldestWriteSentAt()
    if (oldest === Infinity || this.#stallReportedFor === oldest) return
    const waitingMs = Date.now() - oldest
    if (waitingMs < STALL_WARNING_MS) return
    this.#stallReportedFor = oldest
    this.#logger.warn(
      { waitingMs, pendingBytes: this.#pendingBytes(), maxPendingBytes: this.#maxPendingBytes, url: this.#url },
      STALL_MESSAGE,
    )
  }

  /**
   * Logs once when records have waited `STALL_WARNING_MS` for a connection
   * attempt that neither became ready nor failed. A failed attempt logs its
   * own error, so only an attempt still under way is reported here.
   */
  #checkNotReady(): void {
    const acceptedAt = this.#acceptedAt
    if (this.#notReadySince === undefined || this.#notReadyReported || acceptedAt === undefined) return
    // Counted from the connection's own start: the refused attempts of an outage before it accepted nothing.
    const waitingMs = Date.now() - acceptedAt
    if (this.client.status !== 'connect' || waitingMs < STALL_WARNING_MS) return
    this.#notReadyReported = true
    this.#logger.warn(
      { waitingMs, status: this.client.status, pendingBytes: this.#pendingBytes(), url: this.#url },
      NOT_READY_MESSAGE,
    )
  }

  /**
   * Logs that Redis replied again, once the write logged as stalled has its
   * reply. Called only for a write that Redis replied to: a write that the
   * tracker gave up on, or that ioredis timed out, proves nothing.
   */
  #reportStallEnd(): void {
    const reported = this.#stallReportedFor
    // Writes sent after it are newer, so the oldest is the logged one while it waits.
    if (reported === undefined || this.#oldestWriteSentAt() === reported) return
    this.#stallReportedFor = undefined
    this.#logger.warnRecovery(
      { stalledMs: Date.now() - reported, url: this.#url },
      'redis replied again after a stall',
      [STALL_MESSAGE],
    )
  }

  /** Returns when the oldest batch or heartbeat write in flight was sent, or Infinity when none is. */
  #oldestWriteSentAt(): number {
    let oldest = this.#sentAt[0] ?? Infinity
    for (const sentAt of this.#heartbeatSentAt.values()) {
      if (sentAt < oldest) oldest = sentAt
    }
    return oldest
  }

  /**
   * Returns the removals whose `m` operations this chunk sends, and counts
   * them as no longer queued. A chunk sent again keeps the removals of its
   * first sending, which a later removal of the same prefix may have
   * replaced in `#removals` since.
   */
  #takeRemovals(chunk: BatchChunk): Removal[] {
    const sent = this.#chunkRemovals.get(chunk)
    if (sent !== undefined) return sent
    const removals: Removal[] = []
    for (const pattern of chunk.removals) {
      const removal = this.#removals.get(pattern)
      if (removal === undefined) continue
      removals.push(removal)
      if (removal.queued > 0) removal.queued--
    }
    this.#chunkRemovals.set(chunk, removals)
    return removals
  }

  /**
   * Puts the processors hash back in line with this process's active tasks
   * after a write was lost. The batch starts by removing once more the
   * prefixes whose removal Redis applied. Then it deletes every processor
   * id this process used and sets its active ones again. A removal that
   * was sent but not confirmed comes last, as an `m` that ends what is
   * left and spares the entries just set. A removal still queued is left
   * to its own `m`, which follows the repair. Waits while the byte budget
   * has no room and writes wait for Redis.
   */
  #prependRepair(): void {
    const repair: string[] = []
    const unconfirmed: string[] = []
    let bytes = 0

    for (const [pattern, removal] of this.#removals) {
      if (removal.queued > 0) continue
      const [operation, head, tail] = removal.applied ? ['x', '', ''] : ['m', removal.endedAt, removal.outcome]
      ;(removal.applied ? repair : unconfirmed).push(operation, pattern, head, tail)
      bytes += operationBytes('x', pattern, head, tail)
    }
    for (const processorId of this.#knownProcessors) {
      // A start still waiting in the batch sets its entry itself, after any
      // removal queued before it. Put back now, the entry could be ended by
      // that removal, in a later script call than the repair.
      const active = this.#batch.hasPendingStart(processorId) ? undefined : this.#active.get(processorId)
      repair.push(active === undefined ? 'd' : 'a', processorId, active ?? '', '')
      bytes += operationBytes('a', processorId, active ?? '', '')
    }
    repair.push(...unconfirmed)
    // The repair's records are the active ones, which the tracker keeps
    // anyway, so a repair larger than the budget goes once nothing waits
    // for Redis. Waiting for room instead left finished requests listed for
    // as long as more active records than the budget stayed in flight.
    const waiting = this.#inFlightBytes + this.#retries.bytes + this.#unconfirmedBytes
    if (this.#pendingBytes() + bytes > this.#maxPendingBytes && waiting > 0) return

    for (const processorId of this.#knownProcessors) {
      if (!this.#active.has(processorId)) this.#knownProcessors.delete(processorId)
    }
    this.#needsRepair = false
    // Queued operations come after the repair, so they still apply in order.
    this.#batch.prepend(repair, bytes)
  }

  /**
   * Returns whether a heartbeat of this tracker has gone unrefreshed for
   * longer than its TTL, so that prune may have ended the requests of its
   * recorder. The ends sent meanwhile then remove such a record (the `k`
   * operation), and the request keeps only the record of its real end.
   */
  #mayHaveBeenPruned(now: number): boolean {
    for (const { at, ttlMs } of this.#heartbeatStoredAt.values()) {
      if (now - at > ttlMs) return true
    }
    return false
  }

  /**
   * A heartbeat that was not refreshed for longer than its TTL may have
   * expired, and a reader may have pruned this process's entries meanwhile,
   * so the next batch puts them back.
   */
  #onHeartbeatWritten(prefix: string, previous: number | undefined, ttlMs: number, sentAt: number): void {
    if (!this.#heartbeatConfirmedAt.has(prefix)) return // removed meanwhile
    // Redis started the TTL when it ran the write, which may be long before
    // a busy event loop read the reply, so the times are those of the sending.
    this.#heartbeatConfirmedAt.set(prefix, sentAt)
    this.#heartbeatStoredAt.set(prefix, { at: sentAt, ttlMs })
    if (previous !== undefined && sentAt - previous > ttlMs && this.#knownProcessors.size > 0) {
      this.#needsRepair = true
      // A request that ends before the repair is sent has no entry left to put back.
      this.#checkStoppedOnce = true
      this.#scheduleFlush()
    }
  }

  /**
   * Requests a new connection from ioredis after READONLY: the server was
   * a master and is a replica now, after a failover behind a name (a cloud
   * provider's primary endpoint) that a new connection looks up again. The
   * rejected batch waits in the retry queue (write-retry.ts), so ioredis
   * does not send it again itself. ioredis adds a socket listener for each
   * reconnect requested before the socket closes, so only the first
   * READONLY of a connection requests one.
   */
  readonly #reconnectOnReadonly = (err: Error): 1 | false => {
    if (this.#reconnectAsked || !isReadonlyError(err)) return false
    this.#reconnectAsked = true
    return 1
  }

  readonly #onClientReady = (): void => {
    this.#acceptedAt = undefined
    this.#loadScript = true
    this.#endedReconnectMs = 0
    this.#mismatchDiagnosis?.endOutage()
    this.#mismatchSocket = undefined
    const notReadySince = this.#notReadySince
    this.#notReadySince = undefined
    if (this.#notReadyReported && notReadySince !== undefined) {
      this.#notReadyReported = false
      this.#logger.warnRecovery(
        { waitedMs: Date.now() - notReadySince, url: this.#url },
        'redis connection ready; waiting records are sent now',
        [NOT_READY_MESSAGE],
      )
    }
    if (this.#connectionLostAt !== undefined) {
      const downMs = Date.now() - this.#connectionLostAt
      this.#connectionLostAt = undefined
      this.#logger.warnRecovery(
        { downMs, url: this.#url },
        'redis connection restored; waiting records are sent now',
        [...CONNECTION_ERROR_MESSAGES, ...this.#mismatchMessages.values()],
      )
    }
    this.#mismatchMessages.clear()
    this.#needsRepair = this.#needsRepair || this.#knownProcessors.size > 0
    this.#sendBatch()

    const waiting = [...this.#waitingHeartbeats.values()]
    this.#waitingHeartbeats.clear()
    for (const { heartbeat, ttlMs } of waiting) this.writeHeartbeat(heartbeat, ttlMs)
  }

  readonly #onClientClose = (): void => {
    this.#acceptedAt = undefined
    // Set here too: a write can go out on the next connection before its `ready` event reaches #onClientReady.
    this.#loadScript = true
    this.#reconnectAsked = false
    // Anything in flight on the lost connection may or may not have applied.
    if (!this.#closed) this.#needsRepair = true
    // The connection error is logged instead, and its end when the connection is back.
    this.#stallReportedFor = undefined
    this.#heartbeatSentAt.clear()
    if (this.#failInFlight.size > 0) {
      const lost = new Error('the Redis connection closed before Redis replied; the records may or may not be stored')
      // A given client that the app quit or disconnected has ended, and never sends them again.
      const reconnects = this.#ownsClient || this.client.status !== 'end'
      this.#failAllInFlight(lost, true, reconnects && !this.#closed && this.#sequence !== undefined)
    }
    // A heartbeat write in flight never settles either (see `#failInFlight`).
    for (const [prefix, confirmedAt] of this.#heartbeatConfirmedAt) {
      if (confirmedAt === 0) this.#heartbeatConfirmedAt.set(prefix, Date.now())
    }
    if (this.#parkedSocket !== undefined) {
      // A parked connection that drops stays closed: retrying would keep an
      // idle process alive. The next write connects again.
      this.#parkedSocket = undefined
      this.#retriesStopped = true
      this.client.disconnect()
    }
  }

  /** Reconnects a connection that ended while writes were made after `suspend()`. */
  readonly #onClientEnd = (): void => {
    this.#quitting = false
    if (this.#closed || this.#suspended) return
    if (!this.#ownsClient) {
      this.#logger.warn({ pendingBytes: this.#pendingBytes(), url: this.#url }, GIVEN_CLIENT_ENDED_MESSAGE)
      return
    }
    // A Cluster whose nodes all reject connections ends after each failed
    // attempt, so connecting at once would loop on one core. The wait doubles up to 2 s.
    const waitMs = this.#endedReconnectMs
    this.#endedReconnectMs = Math.min(Math.max(waitMs * 2, ENDED_RECONNECT_FIRST_MS), ENDED_RECONNECT_MAX_MS)
    if (waitMs === 0) {
      this.#connect()
      return
    }
    setTimeout(() => {
      if (this.client.status === 'end' && !this.#closed && !this.#suspended) this.#connect()
    }, waitMs).unref()
  }

  /** Clears a SELECT failure of the previous connection; ioredis sends SELECT again on this one. */
  readonly #onClientConnect = (): void => {
    this.#acceptedAt = Date.now()
    this.#databaseError = undefined
  }

  readonly #onClientError = (err: Error): void => {
    if (DATABASE_MISSING.test(err.message)) {
      const database = (this.client.options as { db?: number }).db ?? 0
      this.#databaseError =
        `Redis at ${this.#url} has no database ${database} (${err.message}), so nothing is written ` +
        'until a new connection selects it. Use a database number below the server\'s `databases` setting.'
      // The message contains Redis's reply already, so the error is left out.
      this.#logger.error({ url: this.#url, database }, this.#databaseError)
      return
    }
    // A connection that this tracker is closing (an idle app's QUIT) may
    // fail its last commands or its ready check. The app does not need to
    // hear about it, because the next write opens a new connection.
    if (this.#quitting || this.#suspended) return
    this.#connectionLostAt ??= Date.now()
    const mismatch = this.#mismatchDiagnosis?.find(err)
    if (mismatch !== undefined) {
      this.#mismatchSocket = (this.client as Redis).stream
      this.#logMismatch(mismatch)
      return
    }
    // The errors that follow a mismatch on the same connection, such as
    // "Stream isn't writeable" of the ready check, tell nothing more.
    if (this.#mismatchSocket !== undefined && this.#mismatchSocket === (this.client as Redis).stream) return
    let message = CONNECTION_ERROR_MESSAGE
    if (AUTH_FAILURE.test(err.message)) message = isSentinelUrl(this.#url) ? SENTINEL_AUTH_FAILURE_MESSAGE : AUTH_FAILURE_MESSAGE
    const cause = findRedisErrorCause(err)
    this.#logger.warn(cause === undefined ? { err, url: this.#url } : { err, cause, url: this.#url }, message)
  }

  /** Logs a mismatch that a probe found, unless the connection was ready or closed meanwhile. */
  readonly #onMismatchFound = (mismatch: ProtocolMismatch): void => {
    if (this.#closed || this.#quitting || this.#suspended || this.#connectionLostAt === undefined) return
    this.#logMismatch(mismatch)
  }

  /**
   * Logs the protocol mismatch that a connection error shows. For a server
   * that is not Redis, this line replaces the error of ioredis 5, "Protocol
   * error, got "H" as reply type byte. Please report this.", which blames
   * ioredis for a wrong tracker URL.
   *
   * A server that sends another line on each connection, such as a banner
   * with a counter, would make each line new to the rate-limited logger.
   * So every line of a kind in this outage repeats the first one, with the
   * first reply quoted, and the logger suppresses it as a repeat.
   */
  #logMismatch(mismatch: ProtocolMismatch): void {
    let message = this.#mismatchMessages.get(mismatch.kind)
    if (message === undefined) {
      message = `${CONNECTION_ERROR_MESSAGE}: ${mismatch.reason}. ${mismatch.hint}`
      if (this.#mismatchMessages.size < MAX_MISMATCH_KINDS) this.#mismatchMessages.set(mismatch.kind, message)
    }
    this.#logger.warn({ url: this.#url }, message)
  }
}

/**
 * Start of the messages of ioredis 5 and 6 for a command that got no reply
 * within the client's `commandTimeout`, the relaxed one of ioredis 6
 * during server maintenance included.
 */
const COMMAND_TIMED_OUT = 'Command timed out'

/**
 * Returns the error of a failed batch write as an Error. A write that got
 * no reply within the `commandTimeout` of a given client may still run in
 * Redis, so its message states that, as that of a closed connection does.
 */
function explainWriteError(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err))
  if (!err.message.startsWith(COMMAND_TIMED_OUT)) return err
  return new Error(
    `${err.message} (the commandTimeout of the Redis client): the records may or may not be stored, ` +
      'because Redis may still run the write',
    { cause: err },
  )
}

const WRITE_FAILED_DROPPED_MESSAGE = 'redis write failed, records dropped'
const WRITE_FAILED_MESSAGE = 'redis write failed'

/** Describes a batch write without records for the log: ending the active entries of a prefix, or a repair. */
function describeRecordlessWrite(removals: readonly string[]): string {
  if (removals.length === 0) return 'updating the processors hash (a repair or a discarded request)'
  return `ending the active entries of processor ids ${removals.join(', ')}`
}

/**
 * Redis's replies to a command that the user's ACL denies: NOPERM for
 * EVALSHA itself, and for a command that the batch script runs, an error
 * that names only the script and its line.
 */
const PERMISSION_DENIED = /\bNOPERM\b|user executing the script can't run this command/

/** Advice after a write that the user's ACL denied. */
const WRITER_ACL_HINT =
  "let the Redis user run the writer's commands that README.md lists under \"Redis users (ACL)\", " +
  'on the keys of the prefix and its task_updates channel'

/** Advice after a redirection (MOVED), which a plain redis:// URL of one Cluster node gets. */
const CLUSTER_NODE_HINT =
  'this Redis is a Cluster node; record to the cluster with a redis+cluster://host:port,host:port URL ' +
  'and a keyPrefix with a hash tag'

/** Replies of Redis to a wrong password, or to a command sent without one when one is required. */
const AUTH_FAILURE = /\b(?:WRONGPASS|NOAUTH)\b/

const CONNECTION_ERROR_MESSAGE = 'redis connection error'
const AUTH_FAILURE_MESSAGE =
  'redis connection error: authentication failed; give the right password, and the ACL user if any, ' +
  'in the tracker URL as redis://user:password@host:port'
const SENTINEL_AUTH_FAILURE_MESSAGE =
  'redis connection error: authentication failed; give the master\'s password, and the ACL user if any, in the ' +
  'tracker URL as redis+sentinel://user:password@host:port/master, and the password of Sentinels that have ' +
  'one of their own as ?sentinelPassword= (with sentinelUsername for an ACL user)'
/** The messages that 'redis connection restored' ends. */
const CONNECTION_ERROR_MESSAGES = [CONNECTION_ERROR_MESSAGE, AUTH_FAILURE_MESSAGE, SENTINEL_AUTH_FAILURE_MESSAGE]

/**
 * Max number of kinds of protocol mismatch whose first line one outage
 * keeps. Each kind is a fixed reason, or Node's message for a TLS error
 * code, so one outage meets a few. A kind beyond the limit is logged with
 * its own text, which the rate-limited logger counts as usual.
 */
const MAX_MISMATCH_KINDS = 16

/** Redis's replies to SELECT of a missing database, and of a database number that is not a whole number. */
const DATABASE_MISSING = /DB index is out of range|invalid DB index/i

/**
 * Client options for the writer: fail fast instead of queueing while
 * disconnected (the tracker keeps its own bounded batch), never resend
 * writes of a lost connection (the tracker repairs instead), and reconnect
 * forever with a backoff capped at 2 s.
 *
 * `disconnectTimeout`: ioredis 5 starts a timer of this length on each
 * `disconnect()` and clears it only when the socket closes. Between two
 * connection attempts the socket is closed already, so the timer keeps the
 * process alive until it runs out. With the default of 2 s, an app that
 * stopped while Redis was down exited 2 s late.
 */
const WRITER_CLIENT_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 5_000,
  disconnectTimeout: 200,
  retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
}

/** A call of `ConnectionWaits.wait()` that has not ended yet. */
interface ConnectionWait {
  /** Whether only `ready` ends the wait, and not `close`. */
  untilReady: boolean
  end(): void
}

/**
 * The calls waiting for a client's connection. They share one `ready` and
 * one `close` listener, added for the first wait and removed after the
 * last. With a listener per wait, Node would print a
 * MaxListenersExceededWarning once the client has more than 10 listeners
 * of one event, its default limit. That happens when an app closes many
 * servers while Redis is down, on a client the app may have passed in.
 */
class ConnectionWaits {
  readonly #client: RedisClient
  readonly #waits = new Set<ConnectionWait>()

  constructor(client: RedisClient) {
    this.#client = client
  }

  /**
   * Resolves when the client is ready, when its connection closes unless
   * `untilReady`, or after `timeoutMs`, whichever comes first.
   */
  wait(timeoutMs: number, untilReady: boolean): Promise<void> {
    return new Promise((resolve) => {
      const wait: ConnectionWait = {
        untilReady,
        end: () => {
          clearTimeout(timer)
          this.#remove(wait)
          resolve()
        },
      }
      const timer = setTimeout(wait.end, timeoutMs)
      if (this.#waits.size === 0) {
        this.#client.on('ready', this.#onReady)
        this.#client.on('close', this.#onClose)
      }
      this.#waits.add(wait)
    })
  }

  #remove(wait: ConnectionWait): void {
    if (!this.#waits.delete(wait) || this.#waits.size > 0) return
    this.#client.off('ready', this.#onReady)
    this.#client.off('close', this.#onClose)
  }

  readonly #onReady = (): void => {
    for (const wait of [...this.#waits]) wait.end()
  }

  readonly #onClose = (): void => {
    for (const wait of [...this.#waits]) {
      if (!wait.untilReady) wait.end()
    }
  }
}

/**
 * Throws for a given client with ioredis's own `keyPrefix`: ioredis
 * prefixes the keys of commands but not the channel of PUBLISH, so
 * readers of the prefix would find the records but no updates.
 */
function requireNoClientKeyPrefix(client: RedisClient): void {
  const clientPrefix = (client.options as { keyPrefix?: unknown } | undefined)?.keyPrefix
  if (typeof clientPrefix !== 'string' || clientPrefix === '') return
  const prefix = JSON.stringify(clientPrefix)
  throw invalidUsage(
    `The Redis client given to web-top has ioredis's keyPrefix ${prefix}, which ioredis does not apply ` +
      'to PUBLISH, so readers would find the records but no live updates. ' +
      `Pass keyPrefix: ${prefix} to web-top and a client without a keyPrefix.`,
  )
}

/**
 * Throws for a given client that has ended (quit, disconnect, or a
 * `retryStrategy` that stopped), which would never send a record.
 */
function requireOpenClient(client: RedisClient): void {
  if (client.status !== 'end') return
  throw invalidUsage(
    'The Redis client given to web-top has ended (ioredis status "end"), so it would send no records. ' +
      'Pass a client that is connected or connecting, or call its connect() before setting web-top up.',
  )
}

/**
 * Opens a second connection for SUBSCRIBE, which takes over the connection
 * it runs on. The writer's options turn the offline queue off, but the
 * SUBSCRIBE sent right away must wait for the new connection.
 */
function duplicateForSubscribe(client: RedisClient): RedisClient {
  if (isCluster(client)) return client.duplicate([], { enableOfflineQueue: true })
  return client.duplicate({ enableOfflineQueue: true })
}

function defineScripts(client: RedisClient): void {
  const scripted = client as unknown as Partial<Record<string, unknown>>
  const define = (name: string, lua: string, numberOfKeys?: number) => {
    if (typeof scripted[name] !== 'function') client.defineCommand(name, { numberOfKeys, lua })
  }
  define('webTopRemoveProcessors', REMOVE_PROCESSORS_SCRIPT, 2)
  define('webTopWriteHeartbeat', WRITE_HEARTBEAT_SCRIPT, 2)
  define(FIELD_LENGTHS_COMMAND, FIELD_LENGTHS_SCRIPT, 1)
  // The number of keys varies, so it is passed as the first argument.
  define('webTopPruneStale', PRUNE_STALE_SCRIPT)
}

/** Validates a batch window, or returns the default one. */
export function resolveBatchWindow(value: number | undefined): number {
  if (value === undefined) return DEFAULT_BATCH_WINDOW_MS
  if (typeof value !== 'number') throw invalidOptionType('batchWindowMs', 'a number', value)
  if (!Number.isInteger(value) || value < 0 || value > MAX_BATCH_WINDOW_MS) {
    const expected = `a whole number of milliseconds from 0 to ${MAX_BATCH_WINDOW_MS}`
    throw invalidOptionRange('batchWindowMs', expected, value)
  }
  return value
}

type Reply = { ok: true; value: unknown } | { ok: false; reason: string }

/** Reason of a reply that failed with WRONGTYPE. */
const WRONG_KEY_TYPE = 'wrong key type'

function readReply(result: [Error | null, unknown] | undefined): Reply {
  if (result === undefined) return { ok: false, reason: 'no reply' }
  const [err, value] = result
  if (err) return { ok: false, reason: err.message.startsWith('WRONGTYPE') ? WRONG_KEY_TYPE : err.message }
  return { ok: true, value }
}

/**
 * Returns the field-value pairs of an HGETALL reply: a flat array of
 * fields and values, or an object, which ioredis makes of it when its reply
 * transformer applies.
 */
function readHashEntries(reply: unknown): Array<[string, unknown]> {
  if (!Array.isArray(reply)) return Object.entries(reply as Record<string, unknown>)
  const entries: Array<[string, unknown]> = []
  for (let index = 0; index + 1 < reply.length; index += 2) {
    entries.push([String(reply[index]), reply[index + 1]])
  }
  return entries
}

/**
 * Returns a URL naming the server of a client given without a URL, for
 * logs and errors: its host, port and database, without credentials. With
 * no client, the tracker connects to the default `redis://127.0.0.1:6379`.
 */
function describeClient(client: RedisClient | undefined): string {
  if (client === undefined) return 'redis://127.0.0.1:6379'
  if (isCluster(client)) {
    // ioredis keeps the seed nodes in a property its types mark private.
    const seeds = (client as unknown as { startupNodes?: unknown }).startupNodes
    const nodes = Array.isArray(seeds) ? seeds.map(describeClusterNode) : []
    return `redis+cluster://${nodes.length > 0 ? nodes.join(',') : 'unknown-nodes'}`
  }
  const { host, port, db, path, tls, sentinels, name } = client.options
  if (Array.isArray(sentinels) && sentinels.length > 0) {
    // The master's address changes with failovers; the Sentinels and the name stay.
    const nodes = sentinels.map((sentinel) => `${sentinel.host ?? '127.0.0.1'}:${sentinel.port ?? 26379}`)
    return `redis+sentinel://${nodes.join(',')}/${name ?? 'mymaster'}${db ? `/${db}` : ''}`
  }
  if (path) return `redis+socket://${path}`
  const database = db ? `/${db}` : ''
  return `${tls ? 'rediss' : 'redis'}://${host ?? '127.0.0.1'}:${port ?? 6379}${database}`
}

/** Returns `host:port` of a Cluster seed node, given as a port, a URL or `{ host, port }`. */
function describeClusterNode(node: unknown): string {
  if (typeof node === 'number') return `127.0.0.1:${node}`
  if (typeof node === 'string') {
    try {
      return node.includes('://') ? new URL(node).host : node
    } catch {
      return 'unknown-node'
    }
  }
  const { host, port } = (node ?? {}) as { host?: unknown; port?: unknown }
  return `${typeof host === 'string' ? host : '127.0.0.1'}:${typeof port === 'number' || typeof port === 'string' ? port : 6379}`
}

/**
 * Throws unless `url` is a valid `redis://` or `rediss://` URL of one
 * server. ioredis connects to the host and port of a URL of any other
 * scheme, so `http://host` would reach a web server, and a URL without a
 * host (`memory://`) the default localhost:6379.
 */
function requireServerUrl(url: unknown): void {
  if (typeof url !== 'string') throw invalidOptionType('url', 'a redis:// or rediss:// URL', url)
  requireTrimmedUrl(url)
  if (!/^rediss?:\/\//i.test(url)) {
    throw invalidTrackerUrl(
      maskUrl(url),
      'RedisTracker takes a redis:// or rediss:// URL of one server; ' +
        'for memory://, http(s)://, redis+cluster:// or redis+sentinel:// use createTrackerFromUrl()',
    )
  }
  validateServerUrl(url)
}
