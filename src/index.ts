export { topMiddleware } from './adapters/express'
export type { TopMiddleware } from './adapters/express'
export { topPlugin } from './adapters/fastify'
export type { WebTopRouteConfig } from './adapters/fastify'
export { createRequestTracker, withTop } from './adapters/node-http'
export type { NodeHttpTrackContext, RequestTracker, TopRequestListener } from './adapters/node-http'
export { Recorder } from './recorder/recorder'
export { OUTCOME_TAG } from './task/cleanup-end'
export type { CleanupOutcome } from './task/cleanup-end'
export type { RequestOutcome, TrackContext } from './recorder/recorder'
export type { ResolvedOptions, TopOptions } from './options'
export { MemoryTracker } from './trackers/memory-tracker'
export type { MemoryTrackerOptions } from './trackers/memory-tracker'
export { RedisTracker } from './trackers/redis-tracker'
export type { GivenRedisClient, Ioredis6Client, RedisClient, RedisTrackerOptions } from './trackers/redis-tracker'
export { createRedisKeys } from './trackers/redis-keys'
export {
  createRedisClient,
  hasClusterHashTag,
  parseRedisTarget,
  requireClusterHashTag,
  validateServerUrl,
  waitForReady,
} from './trackers/redis-connection'
export type { RedisConnectionOptions, RedisTarget } from './trackers/redis-connection'
export { listPrefixes } from './trackers/list-prefixes'
export type { RedisKeys } from './trackers/redis-keys'
export { createTrackerFromUrl, getSharedMemoryTracker, DEFAULT_TRACKER_URL } from './trackers/from-url'
export type { TrackerUrlOptions } from './trackers/from-url'
export type { CloseOptions, ReadOptions, TaskSnapshot, TaskUpdateListener, Tracker, TrackerStats } from './trackers/tracker'
export { DecodeCache } from './trackers/decode-cache'
export {
  readHeartbeats,
  pruneStaleTasks,
  isStaleProcessor,
  decodeHeartbeat,
} from './trackers/heartbeat'
export type { Heartbeat, HeartbeatReport, PruneResult } from './trackers/heartbeat'
export type { HeaderPair, HttpTask, Task, TaskState } from './task/http-task'
export { getTaskState } from './task/http-task'
export { decodeTask } from './task/wire'
export { REDACTED, TRUNCATED } from './task/redact'
export type { RedactionOptions, SizeLimits } from './task/redact'
export { isWebTopError, INVALID_OPTION, INVALID_TRACKER_URL } from './errors'
export type { WebTopError } from './errors'
export type { Logger } from './util/logger'
export { topTrackerEndpoint } from './adapters/express-endpoint'
export type { TrackerEndpointHandler } from './adapters/express-endpoint'
export { topTrackerRoute } from './adapters/fastify-endpoint'
export type { TrackerRouteOptions } from './adapters/fastify-endpoint'
export { createTrackerEndpoint, MIN_API_KEY_LENGTH, TRACKER_ACTIONS } from './adapters/tracker-endpoint'
export type {
  EndpointRequest,
  EndpointResponse,
  TrackerAction,
  TrackerEndpoint,
  TrackerEndpointOptions,
} from './adapters/tracker-endpoint'
export { HttpTracker, HttpTrackerError } from './trackers/http-tracker'
export type { HttpTrackerErrorCode, HttpTrackerOptions } from './trackers/http-tracker'
