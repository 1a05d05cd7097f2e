/**
 * When to log about a dependency that keeps failing (the API server while it restarts, an overloaded LIST): once when
 * the failures begin and once when they end, instead of a warning with a stack trace per failed request. During an
 * API server restart the route agent used to log 8-25 such lines per node; one line per outage says the same.
 */

/** What to log after a failure or a success; undefined: nothing beyond debug. */
export type OutageLog =
  { kind: 'began'; error: string } | { kind: 'ended'; failures: number; durationMs: number; lastError: string };

/** The failures of one dependency since it last worked. */
export class Outage {
  private failures = 0;
  private since = 0;
  private lastError = '';

  /** True while failures are not followed by a success. */
  get ongoing(): boolean {
    return this.failures > 0;
  }

  /** A failure at `now`: logged when it is the first of an outage. */
  failed(error: string, now: number): OutageLog | undefined {
    this.lastError = error;
    this.failures++;
    if (this.failures > 1) return undefined;
    this.since = now;
    return { kind: 'began', error };
  }

  /** A success at `now`: ends the outage, if any, with how long it lasted and how many failures it saw. */
  succeeded(now: number): OutageLog | undefined {
    if (this.failures === 0) return undefined;
    const log: OutageLog = {
      kind: 'ended',
      failures: this.failures,
      durationMs: now - this.since,
      lastError: this.lastError,
    };
    this.failures = 0;
    return log;
  }
}

/** A one-line description of an error for logs (no stack: the cause of an outage is the message). */
export function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    const code =
      (error as { code?: unknown; statusCode?: unknown }).code ?? (error as { statusCode?: unknown }).statusCode;
    return code === undefined ? error.message : `${error.message} (${String(code)})`;
  }
  return String(error);
}
