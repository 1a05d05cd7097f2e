/**
 * Runtime settings of `runOperators`, with every default in one place.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { DEFAULT_BACKOFF, resolveBackoff, type BackoffPolicy } from '../core/backoff.js';
import type { ClusterCredentials } from '../kube/credentials.js';
import type { KubeApi, ResourceRef } from '../kube/types.js';

/** Settings of {@link runOperators}. Every field is optional; defaults are documented per field. */
export interface RuntimeSettings {
  /** Kubeconfig file. Defaults to `$KUBECONFIG`, `~/.kube/config`, then the in-cluster service account. */
  kubeconfigPath?: string;
  /** Kubeconfig context. Defaults to the current context. */
  context?: string;
  /** Use these credentials instead of resolving a kubeconfig. */
  credentials?: ClusterCredentials;
  /** Use this API client instead of creating one (its requests are then not counted in metrics). */
  api?: KubeApi;
  /** Namespaced resources: watch only these namespaces. Defaults to all namespaces. */
  namespaces?: string[];
  /** This instance's id; in node scope the Node name. Defaults to `$NODE_NAME`, then the host name. */
  instanceId?: string;
  /** Overrides the scope of every operator class. Defaults to each class's `scope` (itself default `'cluster'`). */
  scope?: 'cluster' | 'node';
  /** Node scope: directory of the node-local state files. Defaults to `$OPKIT_STATE_DIR`, then `/var/lib/opkit`. */
  stateDir?: string;
  /** Objects handled in parallel, per operator class. Defaults to 4. */
  concurrency?: number;
  /** Default backoff of every handler. Defaults to 1 s doubling up to 5 min, 20 % jitter. */
  backoff?: Partial<BackoffPolicy>;
  /** Default maximum attempts of every handler. Defaults to unlimited. */
  retries?: number;
  /** On stop: how long running handlers may take to finish before their signal is aborted. Defaults to 30 000 ms. */
  gracePeriodMs?: number;
  /** Root logger. Defaults to pino JSON on stdout at `logLevel`. */
  logger?: Logger;
  /** Level of the default logger. Defaults to `info`. */
  logLevel?: string;
  /** Serve `/healthz`, `/readyz` and `/metrics`. Defaults to off (the CLI turns it on, port 8080). */
  probes?: { host?: string; port: number } | false;
  /** Register metrics here. Defaults to a private registry (see `runtime.metrics.registry`). */
  metricsRegistry?: Registry;
  /** `source.component` of Events. Defaults to `opkit`. */
  component?: string;
  /** Called for every API request (verb and resource), e.g. to count them in tests. */
  onApiRequest?: (verb: string, ref: ResourceRef) => void;
  /** Node scope: release finalizers and status entries of instances whose Node is gone. Defaults to true. */
  cleanupDeadInstances?: boolean;
  /** Watch tuning, passed to every watcher. Defaults: server timeout 300 s, watchdog timeout + 30 s. */
  watch?: { timeoutSeconds?: number; inactivityTimeoutMs?: number };
}

/** Settings after defaults; what handlers see as `ctx.settings` (minus secrets and hooks). */
export interface ResolvedSettings {
  readonly instanceId: string;
  readonly scopeOverride: 'cluster' | 'node' | undefined;
  readonly namespaces: readonly string[];
  readonly stateDir: string;
  readonly concurrency: number;
  readonly backoff: Readonly<BackoffPolicy>;
  readonly retries: number;
  readonly gracePeriodMs: number;
  readonly component: string;
  readonly cleanupDeadInstances: boolean;
}

/** The default number of objects handled in parallel per operator. */
export const DEFAULT_CONCURRENCY = 4;
/** The default grace period of a stop. */
export const DEFAULT_GRACE_PERIOD_MS = 30_000;
/** The default node-local state directory. */
export const DEFAULT_STATE_DIR = '/var/lib/opkit';

/** Applies the defaults (reading NODE_NAME and OPKIT_STATE_DIR from `env`). */
export function resolveSettings(settings: RuntimeSettings, env: NodeJS.ProcessEnv = process.env): ResolvedSettings {
  const concurrency = settings.concurrency ?? DEFAULT_CONCURRENCY;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error(`concurrency must be an integer >= 1`);
  const retries = settings.retries ?? Infinity;
  if (!(retries >= 1)) throw new Error('retries must be >= 1 (it counts attempts)');
  const instanceId = settings.instanceId ?? (env.NODE_NAME || hostname());
  if (!instanceId) throw new Error('no instance id: set instanceId or NODE_NAME');
  return Object.freeze({
    instanceId,
    scopeOverride: settings.scope,
    namespaces: Object.freeze([...(settings.namespaces ?? [])]),
    stateDir: settings.stateDir ?? (env.OPKIT_STATE_DIR || DEFAULT_STATE_DIR),
    concurrency,
    backoff: Object.freeze(resolveBackoff(settings.backoff, DEFAULT_BACKOFF)),
    retries,
    gracePeriodMs: settings.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS,
    component: settings.component ?? 'opkit',
    cleanupDeadInstances: settings.cleanupDeadInstances ?? true,
  });
}
