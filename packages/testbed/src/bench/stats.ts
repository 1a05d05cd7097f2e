/** Statistics of benchmark samples. */

/** The value at quantile `q` (0..1), interpolating linearly between the closest ranks. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const below = sorted[Math.floor(position)] as number;
  const above = sorted[Math.ceil(position)] as number;
  return below + (above - below) * (position - Math.floor(position));
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** Median, p90, min and max of samples, plus their count. */
export interface Summary {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

/** Median, p90, min and max of the finite values (NaN marks a sample that could not be taken). */
export function summarize(all: readonly number[]): Summary {
  const values = all.filter(Number.isFinite);
  let min = Number.NaN;
  let max = Number.NaN;
  // A loop, not Math.min(...values): spreading a large sample array would overflow the stack.
  for (const value of values) {
    if (!(value >= min)) min = value;
    if (!(value <= max)) max = value;
  }
  return { n: values.length, median: median(values), p90: quantile(values, 0.9), min, max };
}
