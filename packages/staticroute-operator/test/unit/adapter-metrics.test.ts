import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AdapterState } from '../../src/adapters/health.js';
import { countRoutes, nodeRouteMetrics } from '../../src/adapters/metrics.js';
import type { DesiredRoute, ObjectAssessment } from '../../src/logic/desired.js';

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort();
  for (const line of text.split('\n')) {
    const match = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] as string).split(',').sort();
    if (have.length === wanted.length && have.every((item, index) => item === wanted[index])) return Number(match[3]);
  }
  return undefined;
}

describe('node route metrics', () => {
  it('counts what the adapters report and mirrors their health', async () => {
    const registry = new Registry();
    const metrics = nodeRouteMetrics(registry, 'node-a');
    const channel = new AdapterState();
    const unwatch = metrics.watch('channel', channel);
    channel.failed(new Error('closed'));
    channel.error('socket', new Error('closed'));
    channel.emit({ type: 'dump-retried' });
    channel.emit({ type: 'operations', counts: { add: { ok: 3, ENETUNREACH: 1 }, replace: {}, delete: { ok: 1 } } });
    let text = await registry.metrics();
    expect(sample(text, 'staticroute_netlink_up', { node: 'node-a', component: 'channel' })).toBe(0);
    expect(
      sample(text, 'staticroute_netlink_errors_total', { node: 'node-a', component: 'channel', kind: 'socket' }),
    ).toBe(1);
    expect(sample(text, 'staticroute_netlink_dump_retries_total', { node: 'node-a', component: 'channel' })).toBe(1);
    expect(
      sample(text, 'staticroute_route_operations_total', { node: 'node-a', op: 'add', result: 'ENETUNREACH' }),
    ).toBe(1);
    expect(sample(text, 'staticroute_route_operations_total', { node: 'node-a', op: 'add', result: 'ok' })).toBe(3);
    channel.reopened();
    text = await registry.metrics();
    expect(sample(text, 'staticroute_netlink_up', { node: 'node-a', component: 'channel' })).toBe(1);
    expect(sample(text, 'staticroute_netlink_reopens_total', { node: 'node-a', component: 'channel' })).toBe(1);
    unwatch();
    channel.reopened();
    text = await registry.metrics();
    expect(sample(text, 'staticroute_netlink_reopens_total', { node: 'node-a', component: 'channel' })).toBe(1);
  });

  it('records the route counts and the time of the last successful full pass', async () => {
    const registry = new Registry();
    const metrics = nodeRouteMetrics(registry, 'node-a');
    const monitor = new AdapterState();
    metrics.watch('monitor', monitor);
    monitor.emit({ type: 'resync', reason: 'link' });
    metrics.fullPassSucceeded({ installed: 7, refused: 2, failed: 1 }, new Date('2026-12-04T10:00:00Z'));
    const text = await registry.metrics();
    expect(sample(text, 'staticroute_routes', { node: 'node-a', state: 'installed' })).toBe(7);
    expect(sample(text, 'staticroute_routes', { node: 'node-a', state: 'refused' })).toBe(2);
    expect(sample(text, 'staticroute_routes', { node: 'node-a', state: 'failed' })).toBe(1);
    expect(sample(text, 'staticroute_last_full_pass_timestamp_seconds', { node: 'node-a' })).toBe(1796378400);
    expect(sample(text, 'staticroute_monitor_resyncs_total', { node: 'node-a', reason: 'link' })).toBe(1);
    expect(sample(text, 'staticroute_netlink_reopens_total', { node: 'node-a', component: 'monitor' })).toBe(0);
  });

  it('registers once per registry: an agent started again in the process gets the same series', async () => {
    const registry = new Registry();
    nodeRouteMetrics(registry, 'node-a').fullPassSucceeded({ installed: 1, refused: 0, failed: 0 });
    expect(() =>
      nodeRouteMetrics(registry, 'node-a').fullPassSucceeded({ installed: 2, refused: 0, failed: 0 }),
    ).not.toThrow();
    expect(sample(await registry.metrics(), 'staticroute_routes', { node: 'node-a', state: 'installed' })).toBe(2);
  });

  it('counts the routes of a pass: installed, refused destinations, failed and undeleted', () => {
    const route = {} as DesiredRoute;
    const assessment = (name: string, refused: string[]): ObjectAssessment => ({
      name,
      deleting: false,
      selected: true,
      invalid: [],
      refused: refused.map((destination) => ({ destination, reason: 'unsafe' })),
      conflicts: [],
      claimed: [],
    });
    const counts = countRoutes(
      {
        routes: new Map([
          ['198.51.100.1/32', route],
          ['198.51.100.2/32', route],
          ['198.51.100.3/32', route],
        ]),
        assessments: new Map([
          ['a', assessment('a', ['10.116.0.0/20'])],
          ['b', assessment('b', ['10.116.0.0/20', '0.0.0.0/0'])],
        ]),
      },
      new Map([['198.51.100.2/32', 'ENETUNREACH']]),
      new Map([['203.0.113.0/24', 'EPERM']]),
    );
    expect(counts).toEqual({ installed: 2, refused: 2, failed: 2 });
  });
});
