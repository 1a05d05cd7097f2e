/**
 * The probe server: `/healthz` (liveness: watch loops alive), `/readyz` (readiness: initial lists handled) and
 * `/metrics` (Prometheus text format). Anything else is a 404.
 *
 * It is a bare `node:http` server on purpose: a web framework would cost memory on every node for three routes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Options for {@link startProbeServer}. */
export interface ProbeServerOptions {
  /** Address to bind. Defaults to `0.0.0.0` (the kubelet probes the pod IP). */
  host?: string;
  /** Port to bind; 0 picks a free one (the actual port is returned). */
  port: number;
  /** Liveness check; false answers 503. An exception counts as false. */
  health: () => boolean;
  /** Readiness check; false answers 503. An exception counts as false. */
  ready: () => boolean;
  /** Registry served on `/metrics`. */
  registry: Registry;
}

/** A running probe server. */
export interface ProbeServer {
  /** The bound port (useful when 0 was asked). */
  port: number;
  /** Stops accepting connections and closes idle keep-alive sockets. */
  close(): Promise<void>;
}

/** Starts the probe server; resolves once it listens. */
export function startProbeServer(opts: ProbeServerOptions): Promise<ProbeServer> {
  const server = createServer((req, res) => {
    void route(opts, req, res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            // Probe clients keep connections alive; without this close() would wait for them to time out.
            server.closeAllConnections();
          }),
      });
    });
  });
}

async function route(opts: ProbeServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return send(res, 405, 'text/plain', 'method not allowed\n');
  }
  switch (path) {
    case '/healthz':
      return check(res, opts.health);
    case '/readyz':
      return check(res, opts.ready);
    case '/metrics':
      try {
        const body = await opts.registry.metrics();
        return send(res, 200, opts.registry.contentType, body);
      } catch (err) {
        return send(res, 500, 'text/plain', `metrics collection failed: ${String(err)}\n`);
      }
    default:
      return send(res, 404, 'text/plain', 'not found\n');
  }
}

function check(res: ServerResponse, probe: () => boolean): void {
  let ok = false;
  try {
    ok = probe();
  } catch {
    ok = false;
  }
  send(res, ok ? 200 : 503, 'text/plain', ok ? 'ok\n' : 'not ok\n');
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
