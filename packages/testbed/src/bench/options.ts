/** Command-line options of the benchmarks: `--name=value`, `--quick` and plain flags. */

/**
 * `--name=value` options over numeric defaults (`--cold-runs=2` sets `coldRuns`); `--quick` applies the quick
 * defaults first. Options that name no default are left to {@link stringOption}.
 */
export function numericOptions<T extends Record<string, number>>(defaults: T, quick: Partial<T> = {}): T {
  const args = process.argv.slice(2);
  const result: Record<string, number> = { ...defaults, ...(args.includes('--quick') ? quick : {}) };
  for (const arg of args) {
    if (arg === '--quick' || !arg.startsWith('--')) continue;
    const match = /^--([a-z0-9-]+)=(.*)$/.exec(arg);
    const key = match?.[1]?.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (!match || key === undefined || !(key in result)) continue;
    const value = Number(match[2]);
    if (!Number.isFinite(value)) throw new Error(`option ${arg}: not a number`);
    result[key] = value;
  }
  return result as T;
}

/** A string option `--name=value` (undefined when absent). */
export function stringOption(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv
    .slice(2)
    .find((arg) => arg.startsWith(prefix))
    ?.slice(prefix.length);
}

/** Whether the flag `--name` was given. */
export const flag = (name: string): boolean => process.argv.slice(2).includes(`--${name}`);
