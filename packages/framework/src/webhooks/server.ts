/**
 * The admission webhook server: HTTPS, one route per handler, AdmissionReview v1 in and out.
 *
 * A bare `node:https` server, like the probe server: a web framework would cost memory for a handful of routes.
 * Requests are bounded (body size, time to send it), the certificate can be replaced while serving (new
 * connections get the new one, open ones keep theirs), and every request is counted by webhook and verdict.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { admit, type InvokeHandler } from './dispatch.js';
import { admissionResponse, parseAdmissionReview, reviewUid, ReviewFormatError, type Verdict } from './review.js';
import { requestMatchesRoute, type AdmissionRoute } from './routes.js';
import type { KeyPair } from './certs.js';

/** Options of {@link startWebhookServer}. */
export interface WebhookServerOptions {
  /** Address to bind. Defaults to `0.0.0.0`. */
  host?: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  routes: ReadonlyMap<string, AdmissionRoute>;
  /** The serving certificate and key to start with. */
  certificate: KeyPair;
  invoke: InvokeHandler;
  logger: Logger;
  /** Where the request metrics go. */
  registry: Registry;
  /** Bodies larger than this are refused with 413. */
  maxRequestBytes: number;
  /** A request must be received whole within this. */
  requestTimeoutMs: number;
}

/** A running webhook server. */
export interface WebhookServer {
  readonly port: number;
  /** Serves `certificate` to new connections from now on. */
  setCertificate(certificate: KeyPair): void;
  close(): Promise<void>;
}

/** The request metrics, registered once per registry. */
interface WebhookMetrics {
  requests: Counter<'webhook' | 'verdict'>;
  duration: Histogram<'webhook'>;
}

function metricsIn(registry: Registry): WebhookMetrics {
  const existing = registry.getSingleMetric('opkit_webhook_requests_total');
  if (existing) {
    return {
      requests: existing as Counter<'webhook' | 'verdict'>,
      duration: registry.getSingleMetric('opkit_webhook_request_duration_seconds') as Histogram<'webhook'>,
    };
  }
  return {
    requests: new Counter({
      name: 'opkit_webhook_requests_total',
      help: 'Admission requests answered, by webhook and verdict (allowed, denied, error: the handler failed)',
      labelNames: ['webhook', 'verdict'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'opkit_webhook_request_duration_seconds',
      help: 'Time from receiving an admission request to answering it, by webhook',
      labelNames: ['webhook'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(new BodyTooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Starts the server; resolves once it listens. */
export function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { routes, logger } = options;
  const metrics = metricsIn(options.registry);
  const server: Server = createServer(
    {
      cert: options.certificate.certPem,
      key: options.certificate.keyPem,
      minVersion: 'TLSv1.2',
      requestTimeout: options.requestTimeoutMs,
      headersTimeout: Math.min(options.requestTimeoutMs, 60_000),
    },
    (req, res) => void handle(req, res),
  );
  // The API server keeps connections alive between calls; a replaced certificate reaches it on the next connection.
  server.keepAliveTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const path = (req.url ?? '/').split('?')[0] as string;
    const route = routes.get(path);
    if (!route) return send(res, 404, `no admission webhook at ${path}\n`);
    if (req.method !== 'POST') return send(res, 405, 'POST an AdmissionReview\n');
    const webhook = route.webhookName;
    const observe = (verdict: string): void => {
      metrics.requests.inc({ webhook, verdict });
      metrics.duration.observe({ webhook }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req, options.maxRequestBytes)).toString('utf8'));
    } catch (error) {
      observe('invalid');
      if (error instanceof BodyTooLarge)
        return send(res, 413, `request larger than ${options.maxRequestBytes} bytes\n`);
      return send(res, 400, 'the body is not JSON\n');
    }
    let verdict: Verdict;
    let request;
    try {
      request = parseAdmissionReview(body);
    } catch (error) {
      observe('invalid');
      const message = error instanceof ReviewFormatError ? error.message : String(error);
      // A uid lets the API server read the refusal; without one only an HTTP error is possible.
      const uid = reviewUid(body);
      if (!uid) return send(res, 400, `${message}\n`);
      return send(res, 200, admissionResponse(uid, { allowed: false, warnings: [], refusal: { code: 400, message } }));
    }
    const object = request.namespace ? `${request.namespace}/${request.name}` : request.name;
    const requestLogger = logger.child({ webhook, object, operation: request.operation, request: request.uid });
    let failed = false;
    if (!requestMatchesRoute(route, request.resource)) {
      const { group, version, resource } = request.resource;
      const message = `${webhook} handles ${route.resource.plural}, not ${resource}.${group || 'core'}/${version}`;
      verdict = { allowed: false, warnings: [], refusal: { code: 400, message } };
    } else {
      verdict = await admit(route, request, {
        invoke: options.invoke,
        logger: requestLogger,
        onBug: (error) => {
          failed = true;
          requestLogger.error({ err: error }, 'admission handler failed: request refused');
        },
      });
    }
    observe(verdict.allowed ? 'allowed' : failed ? 'error' : 'denied');
    if (!verdict.allowed && !failed) {
      // One line per refusal: who was refused what, and why.
      requestLogger.info(
        { user: request.userInfo.username, dryRun: request.dryRun, reason: verdict.refusal.message },
        'admission refused',
      );
    }
    send(res, 200, admissionResponse(request.uid, verdict));
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      resolve({
        port,
        setCertificate: (certificate) =>
          server.setSecureContext({ cert: certificate.certPem, key: certificate.keyPem, minVersion: 'TLSv1.2' }),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
