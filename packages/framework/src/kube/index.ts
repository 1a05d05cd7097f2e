/**
 * The Kubernetes I/O layer: credentials, the JSON API client, the watch loop and the Event recorder.
 */
export * from './types.js';
export { resolveCredentials, type ClusterCredentials, type ResolveCredentialsOptions } from './credentials.js';
export { createKubeApi, type KubeApiOptions, type KubeClient } from './client.js';
export { resourcePath, resourceLabel, objectKey, type ResourcePathOptions } from './paths.js';
export {
  Watcher,
  isGone,
  type WatcherEvent,
  type WatcherOptions,
  type WatcherState,
  type WatchRestartReason,
} from './watcher.js';
export { compareRelist, type RelistChanges } from './relist.js';
export { stripManagedFields, keepsIdentity, type CacheTransform } from './transform.js';
export { NdjsonParser } from './ndjson.js';
export {
  backoffCap,
  fullJitterDelay,
  parseRetryAfter,
  nextRetryDelay,
  type BackoffSettings,
  DEFAULT_BACKOFF_INITIAL_MS,
  DEFAULT_BACKOFF_MAX_MS,
  MAX_RETRY_AFTER_MS,
} from './retry.js';
export {
  EventRecorder,
  eventDedupeKey,
  type EventRecorderOptions,
  type EventTarget,
  type EventType,
  type EventOutcome,
} from './events.js';
export { KeyedTokenBucket, type TokenBucketOptions } from './rate-limit.js';
