/**
 * opkit: a decorator-based Kubernetes operator framework in the spirit of Kopf.
 *
 * ```ts
 * import 'reflect-metadata';
 * import { Operator, OnCreate, type HandlerContext } from 'opkit';
 * ```
 *
 * See the package README for the semantics (causes, serialization, finalizers, retries, progress, scopes).
 */
import 'reflect-metadata';
import type { WatchedObject } from './decorators/index.js';
import { stripManagedFields as stripManagedFieldsOf } from './kube/transform.js';

export {
  Operator,
  OnCreate,
  OnUpdate,
  OnDelete,
  OnResume,
  OnField,
  OnEvent,
  OnTimer,
  OnStartup,
  OnCleanup,
  registeredOperators,
  getOperatorOptions,
  getHandlers,
} from './decorators/index.js';
export type {
  OperatorClass,
  HandlerDecorator,
  OperatorOptions,
  ChangeHandlerOptions,
  DeleteHandlerOptions,
  TimerOptions,
  ActivityOptions,
  EventHandlerOptions,
  Selector,
  SelectorContext,
  WatchedObject,
} from './decorators/index.js';

export { TemporaryError, PermanentError, HandlerTimeoutError } from './core/errors.js';
export type { TemporaryErrorOptions } from './core/errors.js';
export type { DiffOp } from './core/diff.js';
export type { BackoffPolicy } from './core/backoff.js';
export { DEFAULT_BACKOFF } from './core/backoff.js';
export type { HandlerOutcome } from './core/status.js';
export type { Essence } from './core/essence.js';
export type { FieldPath } from './core/paths.js';
export { clusterFinalizer, instanceFinalizer } from './core/finalizers.js';

export type {
  HandlerContext,
  EventContext,
  ActivityContext,
  HandlerCause,
  HandlerPatch,
  HandlerEvents,
  HandlerSettings,
  ObjectCache,
  ObjectEssence,
  EventPublisher,
  NodeCache,
  NodeChange,
  NodeChangeListener,
  NodeChangeOptions,
} from './engine/context.js';
export { runOperators, type OperatorRuntime } from './engine/runtime.js';
export { runUntilSignalled } from './ops/signals.js';
export {
  DEFAULT_CONCURRENCY,
  DEFAULT_GRACE_PERIOD_MS,
  DEFAULT_STATE_DIR,
  type RuntimeSettings,
  type ResolvedSettings,
} from './engine/settings.js';
export { DEFAULT_PREFIX } from './engine/definition.js';
export type { RuntimeStopReason } from './engine/runtime.js';
export { EXIT_LEADERSHIP_LOST } from './ops/signals.js';
export type { LeaderElectionSettings, ResolvedLeaderElection } from './engine/settings.js';
export type { Runnable, RunnableContext } from './engine/runnables.js';
export type { OperatorMetrics } from './ops/metrics.js';
/** Leader election on a Lease, for code that needs it apart from `runOperators` (which has `leaderElection`). */
export {
  LeaderElector,
  LEASES,
  defaultIdentity,
  type Lease,
  type LeaderElectorOptions,
  type LeaderElectionPhase,
  type LeadershipTransition,
} from './kube/leader-election.js';
export { DEFAULT_LEASE_TIMING, type LeaseSpec, type LeaseTiming } from './core/lease.js';

export type {
  KubeApi,
  KubeObject,
  KubeList,
  ResourceRef,
  ObjectMeta,
  PatchType,
  ListOptions,
  WatchOptions,
  WatchEvent,
} from './kube/types.js';
export { ApiError } from './kube/types.js';
export type { CacheTransform } from './kube/transform.js';
/**
 * The default cache transform: drops `metadata.managedFields` (see `kube/transform.ts`). Typed for both the
 * `@Operator({ cacheTransform })` option (`WatchedObject`) and a {@link Watcher}'s `transform` (`KubeObject`): it
 * only reads and copies `metadata`.
 */
export const stripManagedFields = stripManagedFieldsOf as <T extends WatchedObject>(object: T) => T;
export type { EventTarget, EventType } from './kube/events.js';
/**
 * The framework's list+watch loop with a reflector store, for handler authors who need to follow another resource
 * (start it in `@OnStartup`, stop it in `@OnCleanup`). Nodes need none: use `ctx.nodes` in node scope.
 */
export {
  Watcher,
  type WatcherEvent,
  type WatcherOptions,
  type WatcherState,
  type WatchRestartReason,
} from './kube/watcher.js';
/** V8 heap settings for long-running operators (what `opkit run --heap lean` applies). */
export { compactAfterBursts, compactHeap, limitYoungGeneration, type BurstOptions } from './ops/heap.js';
export type { Logger } from 'pino';

/** Node scale: the coalescing per-instance report writer, and the level-based reconciler with secondary watches. */
export { ReportWriter, type ReportWriterOptions, type ReportTemplate } from './reports/report-writer.js';
export {
  Reconciler,
  type ReconcilerOptions,
  type ReconcilerView,
  type ReconcileContext,
  type ReconcileResult,
  type ReconcilerStartContext,
  type SourceChange,
  type WatchSource,
} from './reconcile/reconciler.js';
export { replacementPatch, sameJson } from './core/merge-patch.js';
export { EventRecorder, type EventRecorderOptions } from './kube/events.js';

/** Secondary resources, indexes, daemons and per-handler filters (Kopf's and controller-runtime's primitives). */
export { OnSecondary, Daemon, Index, getSecondaryHandlers, getDaemons, getIndexes } from './decorators/index.js';
export type {
  FieldHandlerOptions,
  FilterOptions,
  SecondaryWatch,
  WatchedResource,
  WatchMapContext,
  CacheView,
  SecondaryHandlerOptions,
  DaemonOptions,
  IndexOptions,
} from './decorators/index.js';
export { PRESENT, ABSENT, type MetadataFilter, type HandlerFilters } from './core/filters.js';
export type { ObjectIndex, IndexResult } from './core/index-store.js';
export type { PrimaryKey, PrimaryKeys } from './core/secondary-keys.js';
export type { SecondaryContext, SecondaryChange, DaemonContext, OperatorViews } from './engine/context.js';
export { DEFAULT_DAEMON_CANCELLATION_TIMEOUT_MS } from './engine/daemons.js';
/** Replace, server-side apply and the 404 test of the API client (`ctx.api`). */
export { isNotFound, type ReplaceOptions, type ApplyOptions } from './kube/types.js';
export type { HandlerApi } from './engine/context.js';
// Manifests from code: RBAC rules and CRDs from TypeBox schemas (docs/manifests.md).
export * from './manifests/index.js';

/** Admission webhooks: `@Validate`/`@Mutate` handlers and the server that answers the API server (docs/webhooks.md). */
export {
  Validate,
  Mutate,
  AdmissionError,
  getAdmissionHandlers,
  DEFAULT_ADMISSION_OPERATIONS,
} from './decorators/index.js';
export type {
  AdmissionOptions,
  AdmissionContext,
  AdmissionOperation,
  AdmissionUserInfo,
  AdmissionErrorOptions,
  ValidateResult,
  MutateResult,
  LabelSelector,
} from './decorators/index.js';
export {
  DEFAULT_WEBHOOK_PORT,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  resolveWebhookSettings,
  type WebhookSettings,
  type WebhookRuntimeSettings,
  type ManagedCertificates,
  type CertificateFiles,
  type ResolvedWebhookSettings,
} from './webhooks/settings.js';
// Not through webhooks/index.ts: the server's libraries load only when a runtime starts it.
export { webhookPermissions } from './webhooks/permissions.js';
export type { ClientConfigBase } from './webhooks/routes.js';
export type { WebhookHandle } from './webhooks/webhooks.js';
