/**
 * `derivePermissions`: the RBAC rules an operator needs, from what its code declares.
 *
 * What the framework itself sends is derived from the decorators and the runtime settings (the list below); what the
 * operator's own code sends is declared by that code: `@Operator({ permissions })`, and the static `permissions()`
 * of the components it uses (`ReportWriter`, `Reconciler`, `LeaderElector`), passed in `permissions`.
 *
 * Derived from an `@Operator` class:
 * - its resource: `list`, `watch` (every operator watches it);
 * - handlers that may write the object (create, update, delete, resume, field, timer and secondary handlers:
 *   finalizer, state annotations, `ctx.patch`): `get` (re-read after a guard conflict), `patch`, and
 *   `patch` on `<resource>/status` (the writer falls back to the main resource when there is no status subresource,
 *   which `patch` covers);
 * - the same handlers post Events (failures, retries, successes): `create`, `patch` on core `events`, in the objects'
 *   namespaces (namespace `default` for cluster-scoped objects);
 * - node scope: `list`, `watch` on core `nodes` (every Node, or with `nodeWatch: 'own'` its own); the dead-instance
 *   janitor (node scope without `nodeWatch: 'own'`, unless `cleanupDeadInstances: false`) writes finalizers and
 *   status entries of the resource: `get`, `patch`, `patch` on `/status`;
 * - every `watches` entry (`@OnSecondary` and `@Index` read these): `list`, `watch`.
 * `@Daemon`s, `@OnEvent` and activities make the framework write nothing (what they send themselves is theirs to
 * declare, Events through `ctx.events` included). Namespaced resources are granted in each of `settings.namespaces`, or cluster-wide when it is empty.
 *
 * From the settings: `leaderElection` adds {@link LeaderElector.permissions}.
 *
 * Not derived: anything the code sends that it does not declare (a handler's `ctx.api` call, a runnable's requests,
 * Events that a runnable or an activity posts through `ctx.events`).
 */
import { getHandlers, getOperatorOptions, getSecondaryHandlers } from '../decorators/metadata.js';
import type { OperatorClass } from '../decorators/metadata.js';
import type { WatchedResource } from '../decorators/options.js';
import type { RuntimeSettings } from '../engine/settings.js';
import { LeaderElector } from '../kube/leader-election.js';
import {
  inNamespaces,
  mergePermissions,
  permission,
  type DerivedPermissions,
  type PermissionDeclaration,
  type Verb,
} from './permissions.js';

/** The runtime settings that change what an operator calls. */
export type PermissionSettings = Pick<
  RuntimeSettings,
  'scope' | 'namespaces' | 'nodeWatch' | 'cleanupDeadInstances' | 'leaderElection'
>;

/** What {@link derivePermissions} derives from. */
export interface PermissionSources {
  /** `@Operator` classes run together (one `runOperators` call). Defaults to none. */
  operators?: readonly OperatorClass[];
  /** The settings they run with (as given to `runOperators`). Defaults to none. */
  settings?: PermissionSettings;
  /** What the rest of the code calls: components' `permissions()`, runnables' requests. Defaults to none. */
  permissions?: readonly PermissionDeclaration[];
}

const CORE_NODES = { group: '', plural: 'nodes' };
const CORE_EVENTS = { group: '', plural: 'events' };
const NAMESPACED_EVENTS: WatchedResource = { ...CORE_EVENTS, version: 'v1', namespaced: true };
const WRITING_KINDS = new Set(['create', 'update', 'delete', 'resume', 'field', 'timer']);

/** The permissions an Event recorder needs to post Events in `namespace` (undefined: every namespace). */
export function eventPermissions(namespace?: string): PermissionDeclaration[] {
  return [permission(CORE_EVENTS, ['create', 'patch'], namespace === undefined ? {} : { namespace })];
}

/** `list` and `watch` on `resource`, as a watch of it sends them (in `namespace` when given). */
export function watchPermissions(resource: WatchedResource, namespace?: string): PermissionDeclaration[] {
  return [permission(resource, ['list', 'watch'], namespace === undefined ? {} : { namespace })];
}

/**
 * The merged RBAC rules for `sources`: a ClusterRole's rules, and a Role's per namespace.
 *
 * @example
 * ```ts
 * const rules = derivePermissions({
 *   operators: [WidgetAgent],
 *   settings: { scope: 'node', nodeWatch: 'own' },
 *   permissions: ReportWriter.permissions({ resource: REPORTS }),
 * });
 * ```
 */
export function derivePermissions(sources: PermissionSources): DerivedPermissions {
  const settings = sources.settings ?? {};
  const declarations = (sources.operators ?? []).flatMap((cls) => operatorPermissions(cls, settings));
  if (settings.leaderElection) declarations.push(...LeaderElector.permissions(settings.leaderElection));
  declarations.push(...(sources.permissions ?? []));
  return mergePermissions(declarations.flatMap((declaration) => inNamespaces(declaration, settings.namespaces ?? [])));
}

/** What the framework sends for one `@Operator` class, plus the class's own `permissions`. */
export function operatorPermissions(cls: OperatorClass, settings: PermissionSettings = {}): PermissionDeclaration[] {
  const options = getOperatorOptions(cls);
  if (!options) throw new Error(`${cls.name} is not decorated with @Operator`);
  const namespaces = settings.namespaces ?? [];
  /** `verbs` on `resource`, in each watched namespace when it is namespaced. */
  const on = (resource: WatchedResource, verbs: Verb[], subresource?: string): PermissionDeclaration[] => {
    const where = resource.namespaced && namespaces.length > 0 ? namespaces : [undefined];
    return where.map((namespace) =>
      permission(resource, verbs, {
        ...(namespace === undefined ? {} : { namespace }),
        ...(subresource ? { subresource } : {}),
      }),
    );
  };
  const own: WatchedResource = { ...options, namespaced: options.namespaced ?? false };
  const scope = settings.scope ?? options.scope ?? 'cluster';
  const declarations = on(own, ['list', 'watch']);
  const writes = writesObjects(cls);
  const janitor = scope === 'node' && settings.nodeWatch !== 'own' && settings.cleanupDeadInstances !== false;
  if (writes || janitor) declarations.push(...on(own, ['get', 'patch']), ...on(own, ['patch'], 'status'));
  if (scope === 'node') declarations.push(permission(CORE_NODES, ['list', 'watch']));
  for (const watch of options.watches ?? []) declarations.push(...on(watch.resource, ['list', 'watch']));
  declarations.push(...(options.permissions ?? []).flatMap((declaration) => inNamespaces(declaration, namespaces)));
  // Events go to the object's namespace; those about cluster-scoped objects to `default` (kube/events.ts).
  if (writes)
    declarations.push(...(own.namespaced ? on(NAMESPACED_EVENTS, ['create', 'patch']) : eventPermissions('default')));
  return declarations;
}

/** Whether the class has handlers whose runs the framework writes back to the object (and reports as Events). */
function writesObjects(cls: OperatorClass): boolean {
  return getHandlers(cls).some((handler) => WRITING_KINDS.has(handler.kind)) || getSecondaryHandlers(cls).length > 0;
}
