/**
 * Turns a decorated class into what the engine runs: resource, scope, storage names and bound handlers.
 */
import { clusterFinalizer, instanceFinalizer } from '../core/finalizers.js';
import { validateHandlers, type HandlerSpec } from '../core/handlers.js';
import { getHandlers, getOperatorOptions, type OperatorClass } from '../decorators/metadata.js';
import type { WatchedObject } from '../decorators/options.js';
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
  /** The class instance whose methods are the handlers. */
  instance: Record<string | symbol, unknown>;
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
    instance: new cls() as Record<string | symbol, unknown>,
  };
}

/** Calls a handler method on the operator instance (with `this` bound). */
export function invokeHandler(definition: OperatorDefinition, handler: HandlerSpec, context: unknown): unknown {
  const method = definition.instance[handler.method];
  if (typeof method !== 'function') throw new Error(`${definition.name}.${String(handler.method)} is not a method`);
  return (method as (ctx: unknown) => unknown).call(definition.instance, context);
}
