/**
 * Prometheus metrics of the operator, served on `/metrics` by the probe server.
 *
 * Metrics live in their own {@link Registry} (not prom-client's global one) so that two operators in one process,
 * or a test that starts several runtimes, never collide on metric names. The operator's own series are prefixed
 * `opkit_`; the default process/Node.js metrics keep their conventional unprefixed names (`process_cpu_seconds_total`,
 * `nodejs_heap_size_used_bytes`, ...) so that stock dashboards and alerts work, unless `processMetricsPrefix` says
 * otherwise.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ApiResponseInfo } from '../kube/types.js';

export { Registry } from 'prom-client';

/** The metric handles the engine and the kube layer update. */
export interface OperatorMetrics {
  /** The registry every metric below is registered in; pass it to the probe server. */
  readonly registry: Registry;
  /** Handler invocations by outcome (`success`, `temporary`, `permanent`, `timeout`, ...). */
  readonly handlerRuns: Counter<'operator' | 'handler' | 'cause' | 'outcome'>;
  /** Handler run time in seconds. */
  readonly handlerDuration: Histogram<'operator' | 'handler' | 'cause'>;
  /** Retries scheduled after a temporary failure. */
  readonly handlerRetries: Counter<'operator' | 'handler'>;
  /** Permanent failures (retries exhausted or PermanentError). */
  readonly handlerFailures: Counter<'operator' | 'handler'>;
  /** Objects waiting in the per-operator queue. */
  readonly queueDepth: Gauge<'operator'>;
  /** Watch stream restarts by reason (`stream-ended`, `gone`, `inactivity`, `error`, ...). */
  readonly watchRestarts: Counter<'resource' | 'reason'>;
  /** HTTP requests sent to the API server, by verb (`list`, `get`, `create`, `patch`, `delete`, `watch`). */
  readonly apiRequests: Counter<'verb'>;
  /** Kubernetes Events posted (`created`, `deduplicated`) or not (`dropped`, `failed`). */
  readonly events: Counter<'outcome'>;
  /** Leader election: 1 while this process holds the Lease (`namespace/name`), 0 while it stands by or after. */
  readonly leader: Gauge<'lease'>;
}

/** Options for {@link createMetrics}. */
export interface MetricsOptions {
  /** Collect the default process and Node.js metrics. Defaults to true. */
  processMetrics?: boolean;
  /** Prefix for the default process metrics. Defaults to `''` (conventional names). */
  processMetricsPrefix?: string;
}

/**
 * Creates and registers the operator's metrics.
 *
 * @param registry - Where to register; defaults to a new private Registry.
 */
export function createMetrics(registry: Registry = new Registry(), options: MetricsOptions = {}): OperatorMetrics {
  if (options.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: options.processMetricsPrefix ?? '' });
  }
  const registers = [registry];
  return {
    registry,
    handlerRuns: new Counter({
      name: 'opkit_handler_runs_total',
      help: 'Handler invocations by outcome.',
      labelNames: ['operator', 'handler', 'cause', 'outcome'] as const,
      registers,
    }),
    handlerDuration: new Histogram({
      name: 'opkit_handler_duration_seconds',
      help: 'Handler run time in seconds.',
      labelNames: ['operator', 'handler', 'cause'] as const,
      // Handlers range from sub-millisecond kernel calls to multi-second API round trips.
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    handlerRetries: new Counter({
      name: 'opkit_handler_retries_total',
      help: 'Handler retries scheduled after a temporary failure.',
      labelNames: ['operator', 'handler'] as const,
      registers,
    }),
    handlerFailures: new Counter({
      name: 'opkit_handler_failures_total',
      help: 'Handlers that failed permanently.',
      labelNames: ['operator', 'handler'] as const,
      registers,
    }),
    queueDepth: new Gauge({
      name: 'opkit_queue_depth',
      help: 'Objects waiting to be handled.',
      labelNames: ['operator'] as const,
      registers,
    }),
    watchRestarts: new Counter({
      name: 'opkit_watch_restarts_total',
      help: 'Watch stream restarts by reason.',
      labelNames: ['resource', 'reason'] as const,
      registers,
    }),
    apiRequests: new Counter({
      name: 'opkit_api_requests_total',
      help: 'HTTP requests sent to the Kubernetes API server, by verb.',
      labelNames: ['verb'] as const,
      registers,
    }),
    events: new Counter({
      name: 'opkit_events_total',
      help: 'Kubernetes Events by outcome (created, deduplicated, dropped, failed).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    leader: new Gauge({
      name: 'opkit_leader',
      help: 'Whether this process holds the leader election Lease (1) or not (0).',
      labelNames: ['lease'] as const,
      registers,
    }),
  };
}

// API client metrics. Kept apart from createMetrics: the API client feeds them through its `onResponse` hook
// (`createKubeApi({ onResponse: observeApiResponse(createApiClientMetrics(registry)) })`).

/** What a node operator alerts on for the API side: request latency and status codes, per verb. */
export interface ApiClientMetrics {
  /** Seconds from sending a request to its response headers (or its failure), by verb. */
  readonly apiRequestDuration: Histogram<'verb'>;
  /** Responses by verb and HTTP status code; `code="error"` for requests that got none (connection, TLS, timeout). */
  readonly apiResponses: Counter<'verb' | 'code'>;
}

/** Creates and registers the {@link ApiClientMetrics} in `registry`. */
export function createApiClientMetrics(registry: Registry): ApiClientMetrics {
  const registers = [registry];
  return {
    apiRequestDuration: new Histogram({
      name: 'opkit_api_request_duration_seconds',
      help: 'Time from sending a Kubernetes API request to its response headers, by verb.',
      labelNames: ['verb'] as const,
      // Loopback answers in a millisecond; an overloaded API server in seconds; the request timeout is 60 s.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    apiResponses: new Counter({
      name: 'opkit_api_responses_total',
      help: 'Kubernetes API responses by verb and HTTP status code (error: no response).',
      labelNames: ['verb', 'code'] as const,
      registers,
    }),
  };
}

/** The API client's `onResponse` hook that records into `metrics`. */
export function observeApiResponse(metrics: ApiClientMetrics): (info: ApiResponseInfo) => void {
  return ({ verb, statusCode, seconds }) => {
    metrics.apiRequestDuration.observe({ verb }, seconds);
    metrics.apiResponses.inc({ verb, code: statusCode === undefined ? 'error' : String(statusCode) });
  };
}
