/**
 * Timing knobs of the operator, read from the environment once when the module loads.
 *
 * Why the environment: `opkit run` instantiates the operator class with no arguments, so module load time is the only
 * moment to choose them. Tests set the variables before importing the operator (see test/*.test.ts) to make retries
 * fast. (There is no drift-check interval any more: the operator watches the ConfigMaps it renders.)
 */

/** The knobs and their meaning. */
export interface Tuning {
  /**
   * `CONFIGTEMPLATE_CONFLICT_RETRY_MS`: how long to wait before trying again when the target ConfigMap belongs to
   * someone else. Default 30 s: a conflict is resolved by a person, so polling faster only adds load.
   */
  conflictRetryMs: number;
}

/** The defaults, for production use. */
export const DEFAULT_TUNING: Readonly<Tuning> = Object.freeze({ conflictRetryMs: 30_000 });

/** Reads the knobs from `env`; an unset variable means the default, a malformed one is an error (fail at start). */
export function readTuning(env: Readonly<Record<string, string | undefined>>): Tuning {
  return {
    conflictRetryMs: positiveMs(env, 'CONFIGTEMPLATE_CONFLICT_RETRY_MS', DEFAULT_TUNING.conflictRetryMs),
  };
}

function positiveMs(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer number of milliseconds, not ${JSON.stringify(text)}`);
  }
  return value;
}
