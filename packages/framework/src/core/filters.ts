/**
 * Per-handler filters, as Kopf has them: `labels`, `annotations` and `when`. A handler whose filters do not match the
 * object is not run for it (a change handler is left out of the cause, a timer tick is skipped, a daemon is not
 * started or is stopped, an index leaves the object out).
 *
 * Filters are evaluated against the object as it is when the decision is made (every handling cycle, every tick),
 * so a label added later makes a handler match from then on. Pure: no I/O, no clock.
 */

/** A label or annotation must be present, whatever its value (Kopf's `kopf.PRESENT`). */
export const PRESENT: unique symbol = Symbol.for('opkit.filter.present');
/** A label or annotation must be absent (Kopf's `kopf.ABSENT`). */
export const ABSENT: unique symbol = Symbol.for('opkit.filter.absent');

/**
 * What one label or annotation must be: exactly this string, {@link PRESENT}, {@link ABSENT}, or a predicate over
 * its value (`undefined` when the key is absent).
 */
export type MetadataFilter = string | typeof PRESENT | typeof ABSENT | ((value: string | undefined) => boolean);

/** The part of an object that filters read. */
export interface FilterTarget {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

/**
 * The filters of one handler. All given conditions must hold (and of every key of `labels` and `annotations`, and
 * of `when`). No filters: the handler matches every object its operator handles.
 */
export interface HandlerFilters<T extends FilterTarget = FilterTarget> {
  /** Label key -> required value, {@link PRESENT}, {@link ABSENT} or a predicate. Defaults to no condition. */
  labels?: Readonly<Record<string, MetadataFilter>>;
  /** Annotation key -> required value, {@link PRESENT}, {@link ABSENT} or a predicate. Defaults to no condition. */
  annotations?: Readonly<Record<string, MetadataFilter>>;
  /** Any condition on the whole object; must be quick and must not throw. Defaults to no condition. */
  when?: (object: T) => boolean;
}

/** True when `filters` has at least one condition. */
export function hasFilters(filters: { labels?: object; annotations?: object; when?: unknown } | undefined): boolean {
  if (!filters) return false;
  return (
    Object.keys(filters.labels ?? {}).length > 0 ||
    Object.keys(filters.annotations ?? {}).length > 0 ||
    filters.when !== undefined
  );
}

/**
 * Whether `object` passes `filters`. A `when` or predicate that throws propagates the error: the caller decides
 * (the engine logs it and counts the handler as not matching).
 */
export function matchesFilters<T extends FilterTarget>(filters: HandlerFilters<T> | undefined, object: T): boolean {
  if (!filters) return true;
  if (!matchesMetadata(filters.labels, object.metadata.labels)) return false;
  if (!matchesMetadata(filters.annotations, object.metadata.annotations)) return false;
  return filters.when ? filters.when(object) === true : true;
}

function matchesMetadata(
  conditions: Readonly<Record<string, MetadataFilter>> | undefined,
  actual: Record<string, string> | undefined,
): boolean {
  if (!conditions) return true;
  for (const [key, condition] of Object.entries(conditions)) {
    // hasOwn: a key like `constructor` must not be found on Object.prototype.
    const value = actual && Object.hasOwn(actual, key) ? actual[key] : undefined;
    if (!matchesValue(condition, value)) return false;
  }
  return true;
}

function matchesValue(condition: MetadataFilter, value: string | undefined): boolean {
  if (condition === PRESENT) return value !== undefined;
  if (condition === ABSENT) return value === undefined;
  if (typeof condition === 'function') return condition(value) === true;
  return value === condition;
}

/** Rejects filters that cannot work (a value that is neither a string, a marker nor a predicate). */
export function validateFilters(owner: string, filters: HandlerFilters | undefined): void {
  if (!filters) return;
  for (const field of ['labels', 'annotations'] as const) {
    for (const [key, condition] of Object.entries(filters[field] ?? {})) {
      const ok =
        typeof condition === 'string' ||
        typeof condition === 'function' ||
        condition === PRESENT ||
        condition === ABSENT;
      if (!ok) {
        throw new Error(
          `${owner}: ${field} filter for '${key}' must be a string, PRESENT, ABSENT or a function, not ${String(condition)}`,
        );
      }
    }
  }
  if (filters.when !== undefined && typeof filters.when !== 'function') {
    throw new Error(`${owner}: 'when' must be a function`);
  }
}
