/**
 * An example operator on opkit: `ConfigTemplate` objects render ConfigMaps.
 *
 * ```yaml
 * apiVersion: examples.opkit.dev/v1
 * kind: ConfigTemplate
 * metadata: { name: web, namespace: demo }
 * spec:
 *   targetName: web-config
 *   values: { port: "8080" }
 *   data: { server.conf: "listen {{ port }}" }
 * ```
 * renders ConfigMap `demo/web-config` with `server.conf: listen 8080`, owned by the template.
 *
 * Run it with `opkit run dist/operator.js --namespace demo` (see the README).
 *
 * Every handler funnels into one level-triggered routine, {@link ConfigTemplateOperator.converge}: render, compare
 * with what is in the cluster, write only the difference. The decorators decide *when* it runs and how loudly it
 * reports; idempotence makes re-runs (after a crash, a retry or a change of the ConfigMap) harmless.
 *
 * The rendered ConfigMaps are a secondary resource (`watches` with `owns`): an edit or deletion of one runs
 * `@OnSecondary` of the template that owns it, which restores it at once, instead of a timer polling every template.
 */
import {
  ApiError,
  derivePermissions,
  OnCreate,
  OnDelete,
  OnResume,
  OnSecondary,
  OnStartup,
  OnUpdate,
  Operator,
  PermanentError,
  TemporaryError,
  type ActivityContext,
  type HandlerContext,
  type SecondaryContext,
} from 'opkit';
import { describePermission, HANDLER_PERMISSIONS, missingPermissions, permissionsIn } from './access.js';
import { sameConditions, specChanges, withReady, type ReadyState } from './conditions.js';
import {
  dataChanges,
  describeOwner,
  desiredConfigMap,
  isInSync,
  isOwnedBy,
  syncPatch,
  type TemplateIdentity,
} from './configmap.js';
import { describeProblems, renderAll } from './render.js';
import { readTuning } from './tuning.js';
import {
  CONFIG_MAPS,
  CONFIG_TEMPLATES,
  GROUP,
  KIND,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  VERSION,
  type ConfigMap,
  type ConfigTemplateSpec,
  type ConfigTemplateStatus,
} from './types.js';

const tuning = readTuning(process.env);

/** What the change handlers of this operator receive. */
export type TemplateContext = HandlerContext<ConfigTemplateSpec, ConfigTemplateStatus>;

/** What `@OnSecondary` receives: the template, and the change of one of its ConfigMaps in `ctx.secondary`. */
export type TemplateChangeContext = SecondaryContext<ConfigTemplateSpec, ConfigTemplateStatus, ConfigMap>;

/**
 * What started a reconciliation. Change handlers report failures by throwing (the framework records and retries);
 * resume and a change of the ConfigMap only re-assert a state the change handlers already reported, so they stay
 * quiet about problems that are not new.
 */
type Trigger = 'create' | 'update' | 'resume' | 'configmap-changed';

/** Renders `ConfigTemplate` objects into ConfigMaps. Register it by importing this module. */
@Operator({
  group: GROUP,
  version: VERSION,
  plural: 'configtemplates',
  kind: KIND,
  namespaced: true,
  // Our own prefix for the framework's finalizer and state annotations, e.g. `examples.opkit.dev/finalizer`, so
  // that several opkit operators never mistake each other's bookkeeping for their own.
  persistencePrefix: GROUP,
  // The ConfigMaps we render (our label keeps the watch cache to those), mapped to their template by its controller
  // owner reference. One that loses the label leaves the watch: delivered as a deletion, and restored.
  watches: [{ resource: CONFIG_MAPS, owns: true, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` }],
  // What the handlers send themselves (`converge`, `cleanUp`): the framework derives the rest.
  permissions: HANDLER_PERMISSIONS,
})
export class ConfigTemplateOperator {
  /**
   * Before any watch starts: are we allowed to do our job, and is the CRD there? Misconfiguration is a
   * `PermanentError` (retrying cannot install a CRD or grant a role): the runtime fails to start with a message
   * that names the fix, and `opkit run` exits 1. Anything else (API server unreachable) is a plain error, which
   * the framework retries with backoff while the operator stays unready.
   */
  @OnStartup({ id: 'preflight' })
  async preflight(ctx: ActivityContext): Promise<void> {
    const namespaces = ctx.settings.namespaces.length > 0 ? [...ctx.settings.namespaces] : [undefined];
    // What this very class sends, derived from its declarations: the same rules rbac.yaml is checked against.
    const derived = derivePermissions({
      operators: [ConfigTemplateOperator],
      settings: { namespaces: [...ctx.settings.namespaces] },
    });
    for (const namespace of namespaces) {
      const missing = await missingPermissions(ctx.api, permissionsIn(derived, namespace), namespace);
      if (missing.length > 0) {
        const where = namespace === undefined ? 'cluster-wide' : `in namespace ${namespace}`;
        throw new PermanentError(
          `RBAC: not allowed ${where} to ${missing.map(describePermission).join(', ')}; ` +
            'grant the role in examples/configmap-operator/rbac.yaml',
        );
      }
      try {
        await ctx.api.list(CONFIG_TEMPLATES, { namespace, limit: 1 });
      } catch (error) {
        if (error instanceof ApiError && error.statusCode === 404) {
          throw new PermanentError(
            `the ConfigTemplate CRD (configtemplates.${GROUP}) is not installed: ` +
              'kubectl apply -f examples/configmap-operator/crd.yaml',
          );
        }
        throw error;
      }
    }
    ctx.logger.info({ namespaces: ctx.settings.namespaces, tuning }, 'preflight passed');
  }

  /** A new template: render its ConfigMap. An invalid template fails for good; a foreign ConfigMap is retried. */
  @OnCreate({ id: 'render' })
  async render(ctx: TemplateContext): Promise<void> {
    await this.converge(ctx, 'create');
  }

  /**
   * A changed template. `ctx.diff` tells what changed: label- or annotation-only edits need no rendering. Why not
   * `@OnField('spec.data')`: the output depends on `spec.data`, `spec.values` and `spec.targetName` together, and
   * one field handler per input would render (and post events) up to three times for one edit.
   */
  @OnUpdate({ id: 'rerender' })
  async rerender(ctx: TemplateContext): Promise<void> {
    const changes = specChanges(ctx.diff);
    if (changes.length === 0) {
      ctx.logger.debug('metadata-only change; nothing to render');
      return;
    }
    ctx.logger.info({ changes }, 'template changed');
    await this.converge(ctx, 'update', changes);
  }

  /**
   * The operator restarted and the template has not changed since it was last handled: nothing needs rendering,
   * but the ConfigMap may have been deleted or edited while nobody watched. Converging writes only if so. It returns
   * nothing and leaves an unchanged status alone, so resuming a template in sync costs no write at all (opkit records
   * a plain success in `status.handlers` only when there is something else to write): a restart with many templates
   * is a read per template. A repair shows as a `Recreated`/`Restored` Event; that it ran shows in the operator's
   * metrics (`opkit_handler_runs_total{handler="resume"}`).
   */
  @OnResume({ id: 'resume' })
  async resume(ctx: TemplateContext): Promise<void> {
    await this.converge(ctx, 'resume');
  }

  /**
   * One of our ConfigMaps changed or was deleted: restore it at once. The framework runs this in the template's queue
   * slot, once its create or update handlers are done, with the latest copy of the ConfigMap. Our own writes come
   * back here too: they are in sync with the template, which is checked against the watched copy, without a request.
   * The ConfigMap of a previous `targetName` being retired is not ours to restore.
   */
  @OnSecondary({ resource: 'configmaps', id: 'restore' })
  async restore(ctx: TemplateChangeContext): Promise<void> {
    const { type, object } = ctx.secondary;
    if (object.metadata.name !== ctx.spec.targetName) return;
    if (type === 'upsert' && this.inSync(ctx, object)) return;
    await this.converge(ctx, 'configmap-changed');
  }

  /**
   * The template is being deleted: delete the ConfigMap(s) we rendered, then the framework removes its finalizer.
   * The owner reference would let Kubernetes' garbage collector do this too, eventually; deleting here makes it
   * happen before the template disappears, and works where no garbage collector runs (like the test control plane).
   * A ConfigMap that is not ours is left alone.
   */
  @OnDelete({ id: 'cleanup' })
  async cleanup(ctx: TemplateContext): Promise<void> {
    const names = new Set([ctx.spec.targetName, ctx.status?.configMap].filter((name): name is string => !!name));
    const deleted: string[] = [];
    for (const name of names) if (await this.deleteIfOwned(ctx, name)) deleted.push(name);
    if (deleted.length > 0) ctx.events.normal('Deleted', `Deleted ConfigMap ${deleted.join(', ')}`);
  }

  /**
   * Brings the cluster in line with the template: render, then create or patch the ConfigMap if it differs, then
   * remove the ConfigMap of a previous `targetName`, then report in status. Safe to run any number of times.
   */
  private async converge(ctx: TemplateContext, trigger: Trigger, changes: string[] = []): Promise<void> {
    const { spec } = ctx;
    const owner: TemplateIdentity = { name: ctx.name, namespace: ctx.namespace as string, uid: ctx.uid };
    const rendered = renderAll(spec.data ?? {}, spec.values ?? {});
    const repairing = trigger === 'resume' || trigger === 'configmap-changed';
    if (!rendered.ok) {
      // Resume and a ConfigMap change see the spec the change handlers already failed on: it was reported then.
      if (repairing) return;
      const message = `invalid template: ${describeProblems(rendered.problems)}`;
      this.setReady(ctx, { status: 'False', reason: 'InvalidTemplate', message });
      ctx.events.warning('InvalidTemplate', message);
      // The last good ConfigMap stays as it is: consumers keep a working configuration until the template is fixed.
      throw new PermanentError(message);
    }

    const desired = desiredConfigMap(owner, spec.targetName, rendered.data);
    const existing = await this.readConfigMap(ctx, spec.targetName);
    if (existing && !isOwnedBy(existing, ctx.uid)) {
      const message =
        `ConfigMap ${spec.targetName} already exists and is ${describeOwner(existing)}; ` +
        'delete it or choose another spec.targetName';
      // One Warning per conflict, not one per retry or tick.
      if (this.setReady(ctx, { status: 'False', reason: 'Conflict', message })) ctx.events.warning('Conflict', message);
      // Taken over by someone else: reported; the next change of the template or of the ConfigMap tries again.
      if (trigger === 'configmap-changed') return;
      throw new TemporaryError(message, { delayMs: tuning.conflictRetryMs });
    }

    const target = `ConfigMap ${spec.targetName}`;
    if (!existing) {
      await ctx.api.create(CONFIG_MAPS, desired, owner.namespace);
      const keys = Object.keys(rendered.data).join(', ');
      if (repairing) ctx.events.normal('Recreated', `${target} was missing; recreated it`);
      else ctx.events.normal('Created', `Created ${target} with keys ${keys}`);
      ctx.logger.info({ configMap: spec.targetName, trigger }, 'ConfigMap created');
    } else if (!isInSync(existing, desired)) {
      await ctx.api.patch(CONFIG_MAPS, spec.targetName, syncPatch(existing, desired), {
        namespace: owner.namespace,
        type: 'json',
      });
      const summary = describeDataChanges(existing.data ?? {}, rendered.data);
      if (repairing) ctx.events.normal('Restored', `${target} was modified; restored it (${summary})`);
      else
        ctx.events.normal(
          'Updated',
          `Updated ${target}${changes.length ? ` after ${changes.join(', ')}` : ''} (${summary})`,
        );
      ctx.logger.info({ configMap: spec.targetName, trigger, summary }, 'ConfigMap updated');
    }

    // `targetName` changed: the new ConfigMap is in place, so the old one can go (make before break).
    const previous = ctx.status?.configMap;
    if (previous && previous !== spec.targetName && (await this.deleteIfOwned(ctx, previous))) {
      ctx.events.normal('Retargeted', `Moved the rendering from ConfigMap ${previous} to ${spec.targetName}`);
    }
    if (previous !== spec.targetName) ctx.patch.status.configMap = spec.targetName;
    const keyCount = Object.keys(rendered.data).length;
    this.setReady(ctx, { status: 'True', reason: 'Rendered', message: `${target} holds ${keyCount} rendered key(s)` });
  }

  /** Whether `configMap` is ours and holds what the template renders now (an invalid template: nothing to restore). */
  private inSync(ctx: TemplateContext, configMap: ConfigMap): boolean {
    const rendered = renderAll(ctx.spec.data ?? {}, ctx.spec.values ?? {});
    if (!rendered.ok) return true;
    const owner: TemplateIdentity = { name: ctx.name, namespace: ctx.namespace as string, uid: ctx.uid };
    const desired = desiredConfigMap(owner, ctx.spec.targetName, rendered.data);
    return isOwnedBy(configMap, ctx.uid) && isInSync(configMap, desired);
  }

  /** Sets the `Ready` condition through the handler's status patch; returns false (and writes nothing) if unchanged. */
  private setReady(ctx: TemplateContext, state: ReadyState): boolean {
    const previous = ctx.status?.conditions;
    const next = withReady(previous, state, ctx.body.metadata.generation, new Date());
    if (sameConditions(previous, next)) return false;
    ctx.patch.status.conditions = next;
    return true;
  }

  private async readConfigMap(ctx: TemplateContext, name: string): Promise<ConfigMap | undefined> {
    try {
      return await ctx.api.get<ConfigMap>(CONFIG_MAPS, name, ctx.namespace);
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  /** Deletes ConfigMap `name` if this template owns it; true when it did (or it vanished meanwhile). */
  private async deleteIfOwned(ctx: TemplateContext, name: string): Promise<boolean> {
    const existing = await this.readConfigMap(ctx, name);
    if (!existing) return false;
    if (!isOwnedBy(existing, ctx.uid)) {
      ctx.logger.info({ configMap: name, owner: describeOwner(existing) }, 'not our ConfigMap; left in place');
      return false;
    }
    try {
      await ctx.api.delete(CONFIG_MAPS, name, ctx.namespace);
    } catch (error) {
      if (!(error instanceof ApiError && error.statusCode === 404)) throw error;
    }
    ctx.logger.info({ configMap: name }, 'ConfigMap deleted');
    return true;
  }
}

function describeDataChanges(before: Record<string, string>, after: Record<string, string>): string {
  const { added, changed, removed } = dataChanges(before, after);
  const parts = [
    added.length ? `added ${added.join(', ')}` : '',
    changed.length ? `changed ${changed.join(', ')}` : '',
    removed.length ? `removed ${removed.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : 'labels restored';
}
