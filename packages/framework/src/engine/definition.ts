/**
 * Turns a decorated class into what the engine runs: resource, scope, storage names and bound handlers.
 */
import { clusterFinalizer, instanceFinalizer } from '../core/finalizers.js';
import {
  validateExtensions,
  type DaemonSpec,
  type IndexSpec,
  type SecondaryHandlerSpec,
} from '../core/handler-extensions.js';
import { validateHandlers, type HandlerSpec } from '../core/handlers.js';
import type { PrimaryKeys } from '../core/secondary-keys.js';
import {
  getDaemons,
  getHandlers,
  getIndexes,
  getOperatorOptions,
  getSecondaryHandlers,
  type OperatorClass,
} from '../decorators/metadata.js';
import type { SecondaryWatch, WatchedObject, WatchMapContext } from '../decorators/options.js';
import type { CacheTransform } from '../kube/transform.js';
import type { ResourceRef } from '../kube/types.js';
import type { ResolvedSettings } from './settings.js';

/** The default persistence prefix. */
export const DEFAULT_PREFIX = 'opkit.dev';

/** One operator class, resolved against the settings. */
export interface OperatorDefinition {
  name: string;
  ref: ResourceRef;
  apiVersion: string;
  kind: string;
  scope: 'cluster' | 'node';
  prefix: string;
  /** The finalizer this instance adds and removes. */
  finalizer: string;
  instanceStatusField: string;
  handlerStatusField: string;
  /** Post `HandlerSucceeded` Events (`@Operator({ successEvents })`). */
  successEvents: boolean;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
  when: ((object: WatchedObject) => boolean) | undefined;
  /** The operator's own cache transform; undefined means the watcher's default (drop `managedFields`). */
  cacheTransform: CacheTransform | undefined;
  handlers: HandlerSpec[];
  /** `@OnSecondary` handlers, in declaration order. */
  secondaryHandlers: SecondaryHandlerSpec[];
  /** `@Daemon`s, in declaration order. */
  daemons: DaemonSpec[];
  /** `@Index`es, in declaration order. */
  indexes: IndexSpec[];
  /** Secondary resources (`@Operator({ watches })`), with their selectors computed. */
  watches: WatchDefinition[];
  /** The class instance whose methods are the handlers. */
  instance: Record<string | symbol, unknown>;
}

/** One secondary resource of an operator, resolved. */
export interface WatchDefinition {
  /** Unique per operator: `ctx.caches.<id>`, `@OnSecondary({ resource: id })`. */
  id: string;
  ref: ResourceRef;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
  /** Undefined means the watcher's default (drop `managedFields`). */
  transform: CacheTransform | undefined;
  owns: boolean;
  map: ((object: WatchedObject, context: WatchMapContext) => PrimaryKeys) | undefined;
}

/** Reads a class's metadata and instantiates it (once, with no arguments). */
export function defineOperatorFromClass(cls: OperatorClass, settings: ResolvedSettings): OperatorDefinition {
  const options = getOperatorOptions(cls);
  if (!options) throw new Error(`${cls.name} is not decorated with @Operator`);
  const name = options.name ?? cls.name;
  const handlers = getHandlers(cls);
  validateHandlers(name, handlers);
  const scope = settings.scopeOverride ?? options.scope ?? 'cluster';
  const prefix = options.persistencePrefix ?? DEFAULT_PREFIX;
  const selectorContext = { instanceId: settings.instanceId };
  const selector = (value: typeof options.labelSelector): string | undefined =>
    typeof value === 'function' ? value(selectorContext) : value;
  const watches = resolveWatches(name, options.watches ?? [], selector);
  const secondaryHandlers = getSecondaryHandlers(cls);
  const daemons = getDaemons(cls);
  const indexes = getIndexes(cls);
  validateExtensions(name, {
    handlers,
    secondary: secondaryHandlers,
    daemons,
    indexes,
    watchIds: watches.map((watch) => watch.id),
    mappingWatchIds: watches.filter((watch) => watch.owns || watch.map).map((watch) => watch.id),
  });
  return {
    name,
    ref: {
      group: options.group,
      version: options.version,
      plural: options.plural,
      namespaced: options.namespaced ?? false,
    },
    apiVersion: options.group ? `${options.group}/${options.version}` : options.version,
    kind: options.kind,
    scope,
    prefix,
    finalizer: scope === 'node' ? instanceFinalizer(prefix, settings.instanceId) : clusterFinalizer(prefix),
    instanceStatusField: options.instanceStatusField ?? 'nodes',
    handlerStatusField: options.handlerStatusField ?? 'handlers',
    successEvents: options.successEvents ?? true,
    labelSelector: selector(options.labelSelector),
    fieldSelector: selector(options.fieldSelector),
    when: options.when,
    // The watcher checks at run time that the transform kept every identity field, which the decorator's
    // `WatchedObject` type cannot express (it does not require `resourceVersion`).
    cacheTransform: options.cacheTransform as CacheTransform | undefined,
    handlers,
    secondaryHandlers,
    daemons,
    indexes,
    watches,
    instance: new cls() as Record<string | symbol, unknown>,
  };
}

function resolveWatches(
  operator: string,
  watches: readonly SecondaryWatch[],
  selector: (value: SecondaryWatch['labelSelector']) => string | undefined,
): WatchDefinition[] {
  const ids = new Set<string>();
  return watches.map((watch) => {
    const { resource } = watch;
    if (!resource || !resource.version || !resource.plural || typeof resource.group !== 'string') {
      throw new Error(`${operator}: every watch needs a resource with group, version and plural`);
    }
    const id = watch.id ?? resource.plural;
    if (ids.has(id)) throw new Error(`${operator}: two watches have the id '${id}' (set distinct ids)`);
    ids.add(id);
    if (watch.map !== undefined && typeof watch.map !== 'function') {
      throw new Error(`${operator}: watch '${id}': map must be a function`);
    }
    return {
      id,
      ref: {
        group: resource.group,
        version: resource.version,
        plural: resource.plural,
        namespaced: resource.namespaced ?? false,
      },
      labelSelector: selector(watch.labelSelector),
      fieldSelector: selector(watch.fieldSelector),
      // As for the primary: the watcher checks at run time that the transform keeps the identity fields.
      transform: watch.cacheTransform as CacheTransform | undefined,
      owns: watch.owns ?? false,
      map: watch.map,
    };
  });
}

/** Calls a handler method on the operator instance (with `this` bound). */
export function invokeHandler(
  definition: OperatorDefinition,
  handler: Pick<HandlerSpec, 'method'>,
  context: unknown,
): unknown {
  const method = definition.instance[handler.method];
  if (typeof method !== 'function') throw new Error(`${definition.name}.${String(handler.method)} is not a method`);
  return (method as (ctx: unknown) => unknown).call(definition.instance, context);
}
