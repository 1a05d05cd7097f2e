/**
 * Structured logging for the operator: pino JSON lines on stdout.
 *
 * JSON is the default because log collectors on the node parse it; the human-friendly pino-pretty output is opt-in
 * (the CLI turns it on only when stdout is a terminal). pino-pretty is loaded synchronously and only when asked, so a
 * production process never pays for it, and it runs in-process rather than as a pino transport because a transport
 * spawns a worker thread that would cost several MB of RSS on every node.
 */
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { ApiError } from '../kube/types.js';

export type { Logger } from 'pino';

/** Options for {@link createLogger}. */
export interface LoggerSettings {
  /** pino level (`trace`, `debug`, `info`, `warn`, `error`, `fatal`, `silent`). Defaults to `info`. */
  level?: string;
  /** Human-readable coloured output through pino-pretty. Defaults to false (JSON lines). */
  pretty?: boolean;
  /** Bound as the `name` field of every line. */
  name?: string;
  /** Where lines go. Defaults to stdout. Tests pass a stream to capture output. */
  destination?: DestinationStream;
}

/**
 * Creates the root logger. Handlers get children of it bound to their object.
 *
 * @example
 * ```ts
 * const logger = createLogger({ level: 'debug', pretty: process.stdout.isTTY, name: 'staticroute' });
 * logger.info({ node: 'n1' }, 'starting');
 * ```
 */
export function createLogger(opts: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    // ISO timestamps read well in `kubectl logs` and sort lexically; epoch millis do neither.
    timestamp: pino.stdTimeFunctions.isoTime,
    // Drop pid/hostname: in a pod the hostname is the pod name and the pid is 1, both noise on every line.
    base: opts.name ? { name: opts.name } : null,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: serializeError },
  };
  if (opts.pretty) {
    const require = createRequire(import.meta.url);
    const pretty = require('pino-pretty') as (o: Record<string, unknown>) => DestinationStream;
    const prettyOptions: Record<string, unknown> = { colorize: true, translateTime: 'SYS:HH:MM:ss.l' };
    if (opts.destination) prettyOptions.destination = opts.destination;
    return pino(options, pretty(prettyOptions));
  }
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/**
 * System error codes (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ENOENT, ...) and the TLS / HTTP client's codes: failures of
 * the environment, not of the code, so their stack says nothing.
 */
const ENVIRONMENT_ERROR_CODE =
  /^(E[A-Z0-9]+|UND_ERR_[A-Z_]+|ERR_TLS_[A-Z_]+|ERR_SSL_[A-Z_]+|CERT_[A-Z_]+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_[A-Z_]+)$/;

/**
 * The `err` field of a log line. An answer of the API server (a 409, a 429 "storage is (re)initializing") or a
 * failure of the network is an expected, retried condition: one line with what it was (message, status, reason,
 * code), no stack trace. Anything else (a bug) keeps pino's full serialization with its stack.
 */
export function serializeError(err: unknown): unknown {
  if (err instanceof ApiError) {
    return {
      type: err.name,
      message: err.message,
      statusCode: err.statusCode,
      ...(err.reason ? { reason: err.reason } : {}),
    };
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string' && ENVIRONMENT_ERROR_CODE.test(code)) {
    return { type: err.name, message: err.message, code };
  }
  return err instanceof Error ? pino.stdSerializers.err(err) : err;
}
