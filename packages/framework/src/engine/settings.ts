/**
 * Runtime settings of `runOperators`, with every default in one place.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { DEFAULT_BACKOFF, resolveBackoff, type BackoffPolicy } from '../core/backoff.js';
import { resolveLeaseTiming, type LeaseTiming } from '../core/lease.js';
import type { ClusterCredentials } from '../kube/credentials.js';
import { defaultIdentity } from '../kube/leader-election.js';
import type { KubeApi, ResourceRef } from '../kube/types.js';
import type { Runnable } from './runnables.js';

/**
 * Leader election settings (see {@link RuntimeSettings.leaderElection}). Timing defaults are client-go's; the
 * constraints: `leaseDurationSeconds` an integer, `renewDeadlineSeconds < leaseDurationSeconds`,
 * `renewDeadlineSeconds > 1.2 x retryPeriodSeconds`.
 */
export interface LeaderElectionSettings {
  /** Namespace of the Lease (it must exist). */
  namespace: string;
  /** Name of the Lease; the same for every replica of the operator. */
  name: string;
  /** This process's identity in the Lease. Defaults to `<instanceId>_<10 random hex digits>` (unique per process). */
  identity?: string;
  /** How long a standby waits, after it last saw the Lease change, before it takes over. Defaults to 15. */
  leaseDurationSeconds?: number;
  /** How long the leader keeps trying to renew before it gives leadership up (and stops). Defaults to 10. */
  renewDeadlineSeconds?: number;
  /** Pause between attempts to acquire or renew. Defaults to 2. */
  retryPeriodSeconds?: number;
}

/** Leader election settings after defaults. */
export interface ResolvedLeaderElection extends LeaseTiming {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
}

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
  /**
   * Node scope: release finalizers and status entries of instances whose Node is gone. Defaults to true (false with
   * `nodeWatch: 'own'`).
   */
  cleanupDeadInstances?: boolean;
  /**
   * Watch tuning, passed to every watcher. Defaults: a server timeout of 70-90 s (spread per watcher), watchdog the
   * timeout + 30 s, so that a half-open connection is found within about two minutes (docs/kube-client.md).
   */
  watch?: { timeoutSeconds?: number; inactivityTimeoutMs?: number };
  /**
   * Run only while this process holds a coordination.k8s.io/v1 Lease: probes and the API client come up, then the
   * runtime waits for the Lease (`/healthz` ok, `/readyz` not ready) before it starts anything else; when it loses the
   * Lease it stops, and `done` resolves with `'leadership-lost'`. Defaults to off (every process runs).
   */
  leaderElection?: LeaderElectionSettings;
  /**
   * Long-running components the runtime starts (after leadership and the `@OnStartup` handlers) and stops (before the
   * `@OnCleanup` handlers), with their readiness and health in the probes. Defaults to none.
   */
  runnables?: readonly Runnable[];
  /**
   * Node scope: which Nodes the runtime's Nodes watch follows. `'all'` (default) serves every Node in `ctx.nodes` and
   * lets the dead-instance janitor run; `'own'` lists and watches only the Node named like `instanceId`, so a
   * DaemonSet's instances each receive one Node's traffic instead of every Node's, and there is no janitor (it
   * needs every Node; `cleanupDeadInstances: true` is then an error).
   */
  nodeWatch?: 'all' | 'own';
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
  /** Which Nodes the Nodes watch follows (node scope). */
  readonly nodeWatch: 'all' | 'own';
  /** Leader election, when on. */
  readonly leaderElection: ResolvedLeaderElection | undefined;
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
  const nodeWatch = settings.nodeWatch ?? 'all';
  if (nodeWatch !== 'all' && nodeWatch !== 'own') throw new Error(`nodeWatch must be 'all' or 'own'`);
  if (nodeWatch === 'own' && settings.cleanupDeadInstances === true) {
    throw new Error(`cleanupDeadInstances needs every Node: it cannot run with nodeWatch 'own'`);
  }
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
    cleanupDeadInstances: settings.cleanupDeadInstances ?? nodeWatch === 'all',
    nodeWatch,
    leaderElection: resolveLeaderElection(settings.leaderElection, instanceId),
  });
}

function resolveLeaderElection(
  settings: LeaderElectionSettings | undefined,
  instanceId: string,
): ResolvedLeaderElection | undefined {
  if (!settings) return undefined;
  if (!settings.namespace || !settings.name) throw new Error('leaderElection needs the namespace and name of a Lease');
  return Object.freeze({
    namespace: settings.namespace,
    name: settings.name,
    identity: settings.identity || defaultIdentity(instanceId),
    ...resolveLeaseTiming(settings),
  });
}
