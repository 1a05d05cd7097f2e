import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.js';
import { startProbeServer, type ProbeServer, type ProbeServerOptions } from '../../src/ops/probes.js';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          type: String(res.headers['content-type']),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

let server: ProbeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/**
 * Starts the probe server on an ephemeral loopback port (closed after each test), healthy and ready unless
 * `overrides` say otherwise, serving a fresh metric set's registry.
 */
async function startServer(overrides: Partial<ProbeServerOptions> = {}): Promise<ProbeServer> {
  server = await startProbeServer({
    host: '127.0.0.1',
    port: 0,
    health: () => true,
    ready: () => true,
    registry: createMetrics().registry,
    ...overrides,
  });
  return server;
}

describe('probe server', () => {
  it('serves /healthz and /readyz from the callbacks, on an ephemeral port', async () => {
    let healthy = true;
    let ready = false;
    const { port } = await startServer({ health: () => healthy, ready: () => ready });
    expect(port).toBeGreaterThan(0);
    expect((await get(port, '/healthz')).status).toBe(200);
    expect((await get(port, '/readyz')).status).toBe(503);
    ready = true;
    healthy = false;
    expect((await get(port, '/readyz')).status).toBe(200);
    expect((await get(port, '/healthz')).status).toBe(503);
    expect((await get(port, '/readyz?verbose')).status).toBe(200);
  });

  it('answers 503 when a check throws', async () => {
    const { port } = await startServer({
      health: () => {
        throw new Error('boom');
      },
    });
    expect((await get(port, '/healthz')).status).toBe(503);
  });

  it('serves Prometheus metrics: opkit_ series with their labels, and process metrics', async () => {
    const metrics = createMetrics();
    metrics.handlerRuns.inc({ operator: 'sr', handler: 'create', cause: 'create', outcome: 'success' });
    metrics.watchRestarts.inc({ resource: 'staticroutes', reason: 'gone' });
    metrics.apiRequests.inc({ verb: 'patch' }, 3);
    metrics.queueDepth.set({ operator: 'sr' }, 2);
    metrics.handlerDuration.observe({ operator: 'sr', handler: 'create', cause: 'create' }, 0.02);
    const { port } = await startServer({ registry: metrics.registry });
    const res = await get(port, '/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain');
    expect(res.body).toContain(
      'opkit_handler_runs_total{operator="sr",handler="create",cause="create",outcome="success"} 1',
    );
    expect(res.body).toContain('opkit_watch_restarts_total{resource="staticroutes",reason="gone"} 1');
    expect(res.body).toContain('opkit_api_requests_total{verb="patch"} 3');
    expect(res.body).toContain('opkit_queue_depth{operator="sr"} 2');
    expect(res.body).toContain('opkit_handler_duration_seconds_bucket');
    expect(res.body).toContain('process_resident_memory_bytes');
  });

  it('answers 404 elsewhere and 405 for other methods', async () => {
    const { port } = await startServer();
    expect((await get(port, '/')).status).toBe(404);
    expect((await get(port, '/healthz/extra')).status).toBe(404);
    expect((await get(port, '/healthz', 'POST')).status).toBe(405);
    expect((await get(port, '/healthz', 'HEAD')).status).toBe(200);
  });

  it('keeps registries apart: two metric sets in one process do not collide', () => {
    const a = createMetrics();
    const b = createMetrics();
    a.apiRequests.inc({ verb: 'get' });
    expect(a.registry).not.toBe(b.registry);
  });

  it('close() returns even with a keep-alive client connected', async () => {
    const probes = await startServer();
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve) =>
      http.get({ host: '127.0.0.1', port: probes.port, path: '/healthz', agent }, (res) =>
        res.resume().on('end', resolve),
      ),
    );
    await probes.close();
    server = undefined;
    agent.destroy();
  });
});
