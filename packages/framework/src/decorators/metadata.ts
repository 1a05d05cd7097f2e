/**
 * Where the decorators keep what they declare: `reflect-metadata` entries on the class, plus a process-wide list of
 * operator classes so that `opkit run <module>` finds every class the module defines just by importing it.
 *
 * The registry lives on `globalThis` under a `Symbol.for` key: if two copies of this module are loaded (a handler
 * package bundling its own copy), classes registered through either are still found.
 */
import 'reflect-metadata';
import type { DaemonSpec, IndexSpec, SecondaryHandlerSpec } from '../core/handler-extensions.js';
import type { HandlerSpec } from '../core/handlers.js';
import type { OperatorOptions } from './options.js';

const OPERATOR_KEY = Symbol.for('opkit:operator');
const HANDLERS_KEY = Symbol.for('opkit:handlers');
const REGISTRY_KEY = Symbol.for('opkit:registry');
const SECONDARY_KEY = Symbol.for('opkit:secondary-handlers');
const DAEMONS_KEY = Symbol.for('opkit:daemons');
const INDEXES_KEY = Symbol.for('opkit:indexes');

/** The method-backed declarations kept apart from {@link HandlerSpec}s, by kind. */
interface ExtensionSpecs {
  secondary: SecondaryHandlerSpec;
  daemon: DaemonSpec;
  index: IndexSpec;
}

const EXTENSION_KEYS: { [K in keyof ExtensionSpecs]: symbol } = {
  secondary: SECONDARY_KEY,
  daemon: DAEMONS_KEY,
  index: INDEXES_KEY,
};

/** A class constructor (the decorated operator). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type OperatorClass = new (...args: any[]) => object;

let declarationOrder = 0;

/** Next declaration number: decorators run in source order, so this orders handlers as written. */
export function nextOrder(): number {
  return declarationOrder++;
}

/** Records operator options on a class and registers it. */
export function defineOperator(target: OperatorClass, options: OperatorOptions): void {
  Reflect.defineMetadata(OPERATOR_KEY, options, target);
  const registry = registryList();
  if (!registry.includes(target)) registry.push(target);
}

/** Appends a handler to a class's handler list (inherited handlers are kept, subclasses add to them). */
export function defineHandler(target: object, handler: HandlerSpec): void {
  const existing = (Reflect.getMetadata(HANDLERS_KEY, target) as HandlerSpec[] | undefined) ?? [];
  Reflect.defineMetadata(HANDLERS_KEY, [...existing, handler], target);
}

/** Appends an `@OnSecondary`, `@Daemon` or `@Index` declaration to a class (inherited ones are kept). */
export function defineExtension<K extends keyof ExtensionSpecs>(
  target: object,
  spec: ExtensionSpecs[K] & { kind: K },
): void {
  const key = EXTENSION_KEYS[spec.kind];
  const existing = (Reflect.getMetadata(key, target) as Array<ExtensionSpecs[K]> | undefined) ?? [];
  Reflect.defineMetadata(key, [...existing, spec], target);
}

function extensions<K extends keyof ExtensionSpecs>(target: OperatorClass, kind: K): Array<ExtensionSpecs[K]> {
  const specs =
    (Reflect.getMetadata(EXTENSION_KEYS[kind], target.prototype as object) as Array<ExtensionSpecs[K]> | undefined) ??
    [];
  return [...specs].sort((a, b) => a.order - b.order);
}

/** The `@OnSecondary` handlers of a class (and its base classes), in declaration order. */
export function getSecondaryHandlers(target: OperatorClass): SecondaryHandlerSpec[] {
  return extensions(target, 'secondary');
}

/** The `@Daemon`s of a class (and its base classes), in declaration order. */
export function getDaemons(target: OperatorClass): DaemonSpec[] {
  return extensions(target, 'daemon');
}

/** The `@Index`es of a class (and its base classes), in declaration order. */
export function getIndexes(target: OperatorClass): IndexSpec[] {
  return extensions(target, 'index');
}

/** The options of an `@Operator` class, or undefined for an undecorated class. */
export function getOperatorOptions(target: object): OperatorOptions | undefined {
  return Reflect.getOwnMetadata(OPERATOR_KEY, target) as OperatorOptions | undefined;
}

/** The handlers declared on a class (and its base classes), in declaration order. */
export function getHandlers(target: OperatorClass): HandlerSpec[] {
  const handlers = (Reflect.getMetadata(HANDLERS_KEY, target.prototype as object) as HandlerSpec[] | undefined) ?? [];
  return [...handlers].sort((a, b) => a.order - b.order);
}

/**
 * Every class decorated with `@Operator` in this process so far, in registration order.
 *
 * Guarantees: a class appears once however often its module is imported (ES modules evaluate once).
 */
export function registeredOperators(): OperatorClass[] {
  return [...registryList()];
}

function registryList(): OperatorClass[] {
  const holder = globalThis as unknown as Record<symbol, OperatorClass[] | undefined>;
  return (holder[REGISTRY_KEY] ??= []);
}
