import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Registry, createMetrics } from '../../src/ops/metrics.js';

describe('createMetrics', () => {
  it('registers the contract metrics, opkit_-prefixed, with their labels, in a private registry', async () => {
    const metrics = createMetrics();
    const json = await metrics.registry.getMetricsAsJSON();
    const ours = Object.fromEntries(json.filter((m) => m.name.startsWith('opkit_')).map((m) => [m.name, m.type]));
    expect(ours).toEqual({
      opkit_handler_runs_total: 'counter',
      opkit_handler_duration_seconds: 'histogram',
      opkit_handler_retries_total: 'counter',
      opkit_handler_failures_total: 'counter',
      opkit_queue_depth: 'gauge',
      opkit_watch_restarts_total: 'counter',
      opkit_api_requests_total: 'counter',
      opkit_events_total: 'counter',
      // 1 while this replica holds its leader-election Lease.
      opkit_leader: 'gauge',
    });
    // Labels are enforced: a wrong label set throws instead of silently creating a new series.
    expect(() => metrics.handlerRuns.inc({ operator: 'a', handler: 'b', cause: 'c', outcome: 'd' })).not.toThrow();
    expect(() => metrics.watchRestarts.inc({ resource: 'x', reason: 'gone' })).not.toThrow();
    expect(() => metrics.apiRequests.inc({ nope: 'x' } as never)).toThrow();
    expect(await globalRegistry.getMetricsAsJSON()).toEqual([]);
  });

  it('includes the default process metrics, unprefixed unless asked', async () => {
    const plain = await createMetrics().registry.getMetricsAsJSON();
    expect(plain.map((m) => m.name)).toContain('process_resident_memory_bytes');
    const prefixed = await createMetrics(new Registry(), {
      processMetricsPrefix: 'opkit_',
    }).registry.getMetricsAsJSON();
    expect(prefixed.map((m) => m.name)).toContain('opkit_process_resident_memory_bytes');
    const none = await createMetrics(new Registry(), { processMetrics: false }).registry.getMetricsAsJSON();
    expect(none.every((m) => m.name.startsWith('opkit_'))).toBe(true);
  });

  it('registers into a given registry', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry, { processMetrics: false });
    expect(metrics.registry).toBe(registry);
    metrics.queueDepth.set({ operator: 'sr' }, 4);
    expect(await registry.metrics()).toContain('opkit_queue_depth{operator="sr"} 4');
  });
});
