/**
 * Keeps the aggregator's rights alive through `kubectl delete -f <release>`, so that an uninstall leaves nothing
 * Terminating.
 *
 * Why: `kubectl delete -f` deletes everything in the file within a second: the CRDs (whose deletion deletes every
 * StaticRoute, each held by the aggregator's finalizer until the nodes removed its routes) and, right after, the
 * aggregator's ServiceAccount and RBAC. The API server deletes the StaticRoutes some seconds later; without its rights
 * the aggregator could release none of them (403), and every StaticRoute and the CRD would stay Terminating for good.
 *
 * How (no object the release names can protect the last right by itself: whatever grants the permission to release
 * the last finalizer would itself be held by it):
 * - At start the aggregator binds its ClusterRole to itself a second time, with a ClusterRoleBinding that is not in the
 *   release file (`kubectl delete -f` does not delete it) and is owned by the ClusterRole (the garbage collector
 *   deletes it with the ClusterRole). It puts its finalizer on the ClusterRole and on its ServiceAccount (whose tokens
 *   stay valid while it is Terminating).
 * - It checks the StaticRoute CRD every few seconds. Once the CRD is being deleted (or gone) and no StaticRoute is
 *   left, it takes its finalizer off the ServiceAccount, then off the ClusterRole, which then goes, and with it (by
 *   the garbage collector) the extra binding.
 */
import { ApiError, type KubeApi, type KubeObject, type Logger, type ResourceRef } from 'opkit';
import { STATIC_ROUTE_GROUP, STATIC_ROUTE_PLURAL } from '../logic/spec.js';

/** The finalizer the aggregator holds on its ServiceAccount and ClusterRole. */
export const UNINSTALL_FINALIZER = 'aggregator.staticroute.opkit.dev/uninstall';
/** The extra binding (not in the release file) that keeps the ClusterRole bound during an uninstall. */
export const UNINSTALL_BINDING = 'k8s-staticroute-aggregator-uninstall';

const CRDS: ResourceRef = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' };
const CLUSTER_ROLES: ResourceRef = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles' };
const CLUSTER_ROLE_BINDINGS: ResourceRef = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  plural: 'clusterrolebindings',
};
const SERVICE_ACCOUNTS: ResourceRef = { group: '', version: 'v1', plural: 'serviceaccounts', namespaced: true };
const STATIC_ROUTE_CRD = `${STATIC_ROUTE_PLURAL}.${STATIC_ROUTE_GROUP}`;

/** The aggregator's identity (deploy/rbac.yaml). */
export interface AggregatorIdentity {
  namespace: string;
  serviceAccount: string;
  clusterRole: string;
}

export const SHIPPED_IDENTITY: AggregatorIdentity = {
  namespace: 'static-routes',
  serviceAccount: 'k8s-staticroute-aggregator',
  clusterRole: 'k8s-staticroute-aggregator',
};

/** Options of {@link UninstallGuard}. */
export interface UninstallGuardOptions {
  api: KubeApi;
  logger: Logger;
  /** How many StaticRoutes exist now (the aggregator's cache); infinite while unknown. */
  staticRoutesLeft: () => number;
  identity?: AggregatorIdentity;
  /** Check interval. Defaults to 3 s. */
  intervalMs?: number;
}

export class UninstallGuard {
  private timer: ReturnType<typeof setInterval> | undefined;
  private uninstalling = false;
  private released = false;
  private checking: Promise<void> | undefined;
  private readonly identity: AggregatorIdentity;

  constructor(private readonly options: UninstallGuardOptions) {
    this.identity = options.identity ?? SHIPPED_IDENTITY;
  }

  /** True from the moment the StaticRoute CRD is seen being deleted until the guard let go. */
  get inProgress(): boolean {
    return this.uninstalling && !this.released;
  }

  /**
   * Binds the ClusterRole a second time and puts the finalizer on the ClusterRole and the ServiceAccount. Skips
   * quietly what does not exist or may not be touched (an aggregator run outside the release).
   */
  async start(): Promise<void> {
    const { identity } = this;
    await this.ensureBinding();
    await this.setFinalizer(CLUSTER_ROLES, identity.clusterRole, undefined, true);
    await this.setFinalizer(SERVICE_ACCOUNTS, identity.serviceAccount, identity.namespace, true);
    this.timer = setInterval(() => void this.check(), this.options.intervalMs ?? 3_000);
    this.timer.unref();
  }

  /** Stops checking. While an uninstall is in progress, waits (at most `waitMs`) for it to complete. */
  async stop(waitMs = 20_000): Promise<void> {
    const deadline = Date.now() + waitMs;
    while (this.inProgress && Date.now() < deadline) {
      await this.check();
      if (this.inProgress) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    clearInterval(this.timer);
  }

  private check(): Promise<void> {
    this.checking ??= this.checkOnce().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    if (this.released) return;
    try {
      if (!this.uninstalling && (await this.crdDeleting())) {
        this.uninstalling = true;
        this.options.logger.info('the StaticRoute CRD is being deleted: uninstalling; keeping our rights until done');
      }
      if (this.uninstalling && this.options.staticRoutesLeft() === 0) await this.release();
    } catch (error) {
      this.options.logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'uninstall check failed',
      );
    }
  }

  private async crdDeleting(): Promise<boolean> {
    try {
      const crd = await this.options.api.get(CRDS, STATIC_ROUTE_CRD);
      return Boolean(crd.metadata.deletionTimestamp);
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 404) return true;
      throw error;
    }
  }

  /** The ServiceAccount first: the ClusterRole's finalizer is the last right the aggregator gives up. */
  private async release(): Promise<void> {
    const { identity } = this;
    await this.setFinalizer(SERVICE_ACCOUNTS, identity.serviceAccount, identity.namespace, false);
    await this.setFinalizer(CLUSTER_ROLES, identity.clusterRole, undefined, false);
    this.released = true;
    this.options.logger.info('uninstall: every StaticRoute released; letting the ServiceAccount and RBAC go');
  }

  /** Creates the extra binding, owned by the ClusterRole, unless it exists. */
  private async ensureBinding(): Promise<void> {
    const { api, logger } = this.options;
    const { identity } = this;
    try {
      const role = await api.get<KubeObject>(CLUSTER_ROLES, identity.clusterRole);
      if (role.metadata.deletionTimestamp) return;
      await api.create(CLUSTER_ROLE_BINDINGS, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: {
          name: UNINSTALL_BINDING,
          ownerReferences: [
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'ClusterRole',
              name: role.metadata.name,
              uid: role.metadata.uid,
            },
          ],
        },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: identity.clusterRole },
        subjects: [{ kind: 'ServiceAccount', name: identity.serviceAccount, namespace: identity.namespace }],
      });
    } catch (error) {
      if (error instanceof ApiError && [403, 404, 409].includes(error.statusCode)) {
        if (error.statusCode !== 409) logger.debug({ status: error.statusCode }, 'uninstall guard: no extra binding');
        return;
      }
      throw error;
    }
  }

  /** Adds or removes the finalizer: a merge patch of the whole list, guarded by the resourceVersion (exact). */
  private async setFinalizer(ref: ResourceRef, name: string, namespace: string | undefined, present: boolean) {
    const { api, logger } = this.options;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const current = await api.get(ref, name, namespace);
        const finalizers = current.metadata.finalizers ?? [];
        if (finalizers.includes(UNINSTALL_FINALIZER) === present) return;
        // The API server refuses new finalizers on a Terminating object: nothing left to protect then.
        if (present && current.metadata.deletionTimestamp) return;
        const next = present
          ? [...finalizers, UNINSTALL_FINALIZER]
          : finalizers.filter((item) => item !== UNINSTALL_FINALIZER);
        await api.patch(
          ref,
          name,
          { metadata: { resourceVersion: current.metadata.resourceVersion, finalizers: next } },
          { type: 'merge', ...(namespace ? { namespace } : {}) },
        );
        return;
      } catch (error) {
        if (error instanceof ApiError && error.statusCode === 409) continue;
        if (error instanceof ApiError && (error.statusCode === 404 || error.statusCode === 403)) {
          logger.debug({ kind: ref.plural, name, status: error.statusCode }, 'uninstall guard: skipped');
          return;
        }
        throw error;
      }
    }
  }
}
