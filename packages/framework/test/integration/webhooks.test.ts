/**
 * Admission webhooks against the real API server: the framework's HTTPS server answers AdmissionReviews that
 * kube-apiserver sends for `kubectl apply` and plain creates, through a configuration the framework writes with a
 * caBundle from the CA it keeps in a Secret. Validation refuses with the handler's message, mutation lands in the
 * stored object, dry runs pass through, a failing handler refuses clearly without stopping the server, certificates
 * are renewed and the CA rotated with admission working throughout, a second replica follows a rotation made by the
 * first, certificate files are re-read when they change, the server refuses what is not a review for its route, and
 * failurePolicy Ignore lets requests through while the server is down. The operator runs as a ServiceAccount with
 * exactly the RBAC that `derivePermissions` and `webhookPermissions` derive.
 */
import { request as httpsRequest } from 'node:https';
import { connect, type PeerCertificate } from 'node:tls';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AdmissionError,
  Mutate,
  Operator,
  Validate,
  runOperators,
  type AdmissionContext,
  type KubeObject,
  type OperatorRuntime,
  type ResourceRef,
  type WebhookSettings,
} from 'opkit';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { derivePermissions } from '../../src/manifests/derive.js';
import { rbacManifests } from '../../src/manifests/rbac.js';
import { createLogger } from '../../src/ops/logging.js';
import { waitFor } from '../../src/testing/index.js';
import { createCertificateAuthority, issueServingCertificate } from '../../src/webhooks/certs.js';
import { webhookPermissions } from '../../src/webhooks/permissions.js';
import { resolveWebhookSettings } from '../../src/webhooks/settings.js';
import { startCluster, type TestCluster } from './helpers.js';

const CONFIGMAPS: ResourceRef = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };
const SECRETS: ResourceRef = { group: '', version: 'v1', plural: 'secrets', namespaced: true };
const VALIDATING: ResourceRef = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  plural: 'validatingwebhookconfigurations',
};
const NAMESPACE = 'hooks';
/** Only ConfigMaps with this label are sent to the webhooks (objectSelector), so nothing else in the cluster is. */
const TESTED = { 'opkit-webhook-test': 'yes' };

interface WebhookEntry {
  name: string;
  clientConfig: { url: string; caBundle: string };
}

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

/** Every request the validating handler saw, for the dry-run test. */
const seen: Array<{ name: string; dryRun: boolean; operation: string }> = [];

@Operator({ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true })
class ConfigMapHooks {
  @Validate({ objectSelector: { matchLabels: TESTED } })
  checkSize(ctx: AdmissionContext<ConfigMap>): string[] | void {
    const data = ctx.object?.data ?? {};
    seen.push({ name: ctx.name, dryRun: ctx.dryRun, operation: ctx.operation });
    if (data.bug !== undefined) (undefined as unknown as { crash(): void }).crash();
    const size = Number(data.size ?? '0');
    if (!Number.isInteger(size) || size < 0 || size > 10) {
      throw new AdmissionError(`data.size must be a whole number from 0 to 10, not ${JSON.stringify(data.size)}`, {
        field: 'data.size',
      });
    }
    if (size > 8) return [`data.size ${size} is close to the limit`];
  }

  @Mutate({ objectSelector: { matchLabels: TESTED } })
  defaults(ctx: AdmissionContext<ConfigMap>): void {
    const object = ctx.object as ConfigMap;
    object.data = { color: 'blue', ...object.data };
    object.metadata.labels = { ...object.metadata.labels, 'opkit.dev/defaulted': 'true' };
  }
}

/** Refuses every ConfigMap labelled `ignore-test`, but with failurePolicy Ignore. */
@Operator({ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true, name: 'lenient' })
class LenientHooks {
  @Validate({ failurePolicy: 'Ignore', objectSelector: { matchLabels: { 'ignore-test': 'yes' } } })
  refuseAll(): void {
    throw new AdmissionError('refused while the server is up');
  }
}

let cluster: TestCluster;
let runtime: OperatorRuntime;
let port: number;
/** The runtime's log lines, parsed. */
const logLines: Array<Record<string, unknown>> = [];

/** A free TCP port on loopback (the configuration's URL must name the port before the server listens). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number };
      server.close(() => resolve(address.port));
    });
  });
}

/** The certificate served on `port`, verified against `ca` (rejects if it does not verify). */
function servedCertificate(atPort: number, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: atPort, ca, servername: undefined }, () => {
      const certificate = socket.getPeerCertificate();
      socket.end();
      resolve(certificate);
    });
    socket.once('error', reject);
  });
}

/** One HTTPS request to the webhook server, trusting its CA bundle: status and body. */
function post(path: string, body: string, method = 'POST'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        ca: runtime.webhooks!.caBundle,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', (error) =>
      method === 'POST' && body.length > 1024 ? resolve({ status: 413, body: String(error) }) : reject(error),
    );
    req.end(body);
  });
}

function webhookSettings(name: string, atPort: number, extra: Partial<WebhookSettings> = {}): WebhookSettings {
  return {
    host: '127.0.0.1',
    port: atPort,
    name,
    clientConfig: { url: `https://127.0.0.1:${atPort}` },
    certificates: { secret: { namespace: NAMESPACE }, checkIntervalMs: 300 },
    maxRequestBytes: 1024 * 1024,
    ...extra,
  };
}

function configMap(name: string, data: Record<string, string>, labels: Record<string, string> = TESTED): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: NAMESPACE, labels },
    data,
  });
}

async function apply(manifest: string, ...flags: string[]) {
  return cluster.cp.kubectl(['apply', ...flags, '-f', '-'], { input: manifest, allowFailure: true });
}

async function stored(name: string): Promise<ConfigMap | undefined> {
  return cluster.api.get<ConfigMap>(CONFIGMAPS, name, NAMESPACE).catch(() => undefined);
}

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.cp.request('POST', '/api/v1/namespaces', { metadata: { name: NAMESPACE } });
  port = await freePort();
  // The operator runs as a ServiceAccount with exactly the rules derived from its class and webhookPermissions: the
  // RBAC that docs/webhooks.md lists is enough.
  const settings = webhookSettings('configmap-hooks', port);
  const permissions = webhookPermissions(resolveWebhookSettings(settings, ['ConfigMapHooks']));
  const rbac = rbacManifests(derivePermissions({ operators: [ConfigMapHooks], permissions }), {
    name: 'configmap-hooks',
    serviceAccount: { namespace: NAMESPACE, name: 'configmap-hooks' },
  });
  await cluster.cp.kubectl(['create', 'serviceaccount', 'configmap-hooks', '-n', NAMESPACE]);
  await cluster.cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }),
  });
  const token = (await cluster.cp.kubectl(['create', 'token', 'configmap-hooks', '-n', NAMESPACE])).stdout.trim();
  runtime = runOperators([ConfigMapHooks], {
    credentials: { server: cluster.cp.server, ca: cluster.cp.caPem, token },
    logger: createLogger({
      level: 'info',
      destination: { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) },
    }),
    webhooks: settings,
  });
  await runtime.ready;
});

afterAll(async () => {
  await runtime?.stop();
  await cluster?.stop();
});

describe('validation and mutation through kubectl', () => {
  test('the configuration is written with the CA from the shared Secret as its caBundle', async () => {
    const configuration = await cluster.api.get<KubeObject & { webhooks: Array<WebhookEntry> }>(
      VALIDATING,
      'configmap-hooks',
    );
    const [webhook] = configuration.webhooks;
    expect(webhook?.name).toBe('validate-check-size.configmaps.core');
    expect(webhook?.clientConfig.url).toBe(`https://127.0.0.1:${port}/validate/configmaps/check-size`);
    const secret = await cluster.api.get<KubeObject & { data: Record<string, string> }>(
      SECRETS,
      'configmap-hooks-webhook-ca',
      NAMESPACE,
    );
    const ca = Buffer.from(secret.data['ca.crt'] as string, 'base64').toString();
    expect(
      Buffer.from(webhook?.clientConfig.caBundle ?? '', 'base64')
        .toString()
        .trim(),
    ).toBe(ca.trim());
    // The served certificate verifies against that CA alone.
    await expect(servedCertificate(port, ca)).resolves.toBeTruthy();
  });

  test('a bad ConfigMap is refused with the handler message, a good one is accepted and defaulted', async () => {
    const refused = await apply(configMap('too-big', { size: '42' }));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('validate-check-size.configmaps.core');
    expect(refused.stderr).toContain('data.size must be a whole number from 0 to 10, not "42"');
    expect(await stored('too-big')).toBeUndefined();
    // One log line for the refusal: who, what, why.
    const refusals = logLines.filter((line) => line.msg === 'admission refused' && line.object === 'hooks/too-big');
    expect(refusals).toEqual([
      expect.objectContaining({
        webhook: 'validate-check-size.configmaps.core',
        operation: 'CREATE',
        user: 'admin',
        reason: 'data.size must be a whole number from 0 to 10, not "42"',
      }),
    ]);

    const accepted = await apply(configMap('good', { size: '9' }));
    expect(accepted.code).toBe(0);
    expect(accepted.stderr).toContain('data.size 9 is close to the limit'); // the handler's warning
    const object = await stored('good');
    expect(object?.data).toEqual({ size: '9', color: 'blue' });
    expect(object?.metadata.labels?.['opkit.dev/defaulted']).toBe('true');

    const metrics = await runtime.metrics.registry.metrics();
    expect(metrics).toMatch(
      /opkit_webhook_requests_total\{webhook="validate-check-size.configmaps.core",verdict="denied"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /opkit_webhook_requests_total\{webhook="mutate-defaults.configmaps.core",verdict="allowed"\} [1-9]/,
    );
  });

  test('an update is validated against the new object too', async () => {
    const result = await apply(configMap('good', { size: '11' }));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('not "11"');
    expect((await stored('good'))?.data?.size).toBe('9');
    expect(seen.some((request) => request.name === 'good' && request.operation === 'UPDATE')).toBe(true);
  });

  test('server dry runs reach the handlers, marked as such, and store nothing', async () => {
    const refused = await apply(configMap('dry-bad', { size: '-1' }), '--dry-run=server');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('not "-1"');
    const accepted = await apply(configMap('dry-good', { size: '1' }), '--dry-run=server', '-o', 'json');
    expect(accepted.code).toBe(0);
    expect((JSON.parse(accepted.stdout) as ConfigMap).data?.color).toBe('blue'); // mutated in the dry run's answer
    expect(await stored('dry-good')).toBeUndefined();
    expect(seen.filter((request) => request.name.startsWith('dry-')).every((request) => request.dryRun)).toBe(true);
    expect(seen.some((request) => request.name === 'dry-good')).toBe(true);
  });

  test('a handler that throws an unexpected error refuses with a clear message; the server keeps serving', async () => {
    const failed = await apply(configMap('buggy', { bug: 'yes' }));
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain('the validate handler ConfigMapHooks.checkSize failed (TypeError:');
    const logged = logLines.filter((line) => line.object === 'hooks/buggy');
    expect(logged).toEqual([
      expect.objectContaining({ level: 'error', msg: 'admission handler failed: request refused' }),
    ]);
    const after = await apply(configMap('after-bug', { size: '2' }));
    expect(after.code).toBe(0);
    const metrics = await runtime.metrics.registry.metrics();
    expect(metrics).toMatch(
      /opkit_webhook_requests_total\{webhook="validate-check-size.configmaps.core",verdict="error"\} 1/,
    );
  });
});

describe('the server', () => {
  test('answers only AdmissionReviews on its routes, within the size limit, and keeps serving', async () => {
    expect((await post('/validate/configmaps/nope', '{}')).status).toBe(404);
    expect((await post('/validate/configmaps/check-size', '', 'GET')).status).toBe(405);
    expect((await post('/validate/configmaps/check-size', 'not json')).status).toBe(400);
    expect(
      (await post('/validate/configmaps/check-size', JSON.stringify({ big: 'x'.repeat(1024 * 1024) }))).status,
    ).toBe(413);
    const old = await post(
      '/validate/configmaps/check-size',
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u1' } }),
    );
    expect(old.status).toBe(200);
    expect(JSON.parse(old.body)).toMatchObject({
      response: {
        uid: 'u1',
        allowed: false,
        status: { code: 400, message: expect.stringContaining('admissionReviewVersions') },
      },
    });
    // A review for another resource than the route's is refused, even if a configuration sends it.
    const secret = { metadata: { name: 's', namespace: NAMESPACE, uid: 'x' } };
    const wrong = await post(
      '/validate/configmaps/check-size',
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u2',
          operation: 'CREATE',
          resource: { group: '', version: 'v1', resource: 'secrets' },
          object: secret,
        },
      }),
    );
    expect(JSON.parse(wrong.body)).toMatchObject({
      response: {
        uid: 'u2',
        allowed: false,
        status: { message: expect.stringContaining('handles configmaps, not secrets') },
      },
    });
    expect((await apply(configMap('after-garbage', { size: '1' }))).code).toBe(0);
    expect(await runtime.metrics.registry.metrics()).toMatch(
      /opkit_webhook_requests_total\{webhook="validate-check-size.configmaps.core",verdict="invalid"\} 3/,
    );
  });
});

describe('certificates', () => {
  test('a renewed serving certificate keeps admission working', async () => {
    const webhooks = runtime.webhooks!;
    const before = await servedCertificate(port, webhooks.caBundle);
    await webhooks.renewCertificate();
    const after = await servedCertificate(port, webhooks.caBundle);
    expect(after.serialNumber).not.toBe(before.serialNumber);
    expect((await apply(configMap('after-renewal', { size: '3' }))).code).toBe(0);
    expect((await apply(configMap('refused-after-renewal', { size: '30' }))).stderr).toContain('not "30"');
  });

  test('a rotated CA: the bundle trusts old and new, the second replica follows, admission keeps working', async () => {
    // A second replica of the same operator (same configuration, same CA Secret), as a Deployment would run; it keeps
    // only the caBundle current, so the configuration keeps pointing at the first replica's URL.
    const secondPort = await freePort();
    const second = runOperators([ConfigMapHooks], {
      kubeconfigPath: cluster.kubeconfigPath,
      logLevel: 'warn',
      instanceId: 'replica-2',
      webhooks: webhookSettings('configmap-hooks', secondPort, { configuration: 'ca-bundle' }),
    });
    try {
      await second.ready;
      const first = runtime.webhooks!;
      const oldBundle = first.caBundle;
      expect(second.webhooks!.caBundle).toBe(oldBundle); // one CA for both replicas
      await second.webhooks!.rotateCA();
      const newBundle = second.webhooks!.caBundle;
      const [newCa, previousCa] = newBundle.split(/(?<=-----END CERTIFICATE-----)\n/);
      expect(previousCa?.trim()).toBe(oldBundle.trim());
      // The first replica reads the rotated Secret and serves a certificate the new CA alone verifies.
      await waitFor(
        () =>
          servedCertificate(port, newCa as string).then(
            () => true,
            () => false,
          ),
        { timeoutMs: 20_000 },
      );
      expect(first.caBundle).toBe(newBundle);
      const configuration = await cluster.api.get<KubeObject & { webhooks: Array<WebhookEntry> }>(
        VALIDATING,
        'configmap-hooks',
      );
      expect(Buffer.from(configuration.webhooks[0]?.clientConfig.caBundle ?? '', 'base64').toString()).toBe(newBundle);
      expect((await apply(configMap('after-rotation', { size: '4' }))).code).toBe(0);
      expect((await apply(configMap('refused-after-rotation', { size: '40' }))).stderr).toContain('not "40"');
    } finally {
      await second.stop();
    }
  });
});

describe('certificate files', () => {
  test('served from files (as cert-manager writes them), re-read when they change, caBundle from ca.crt', async () => {
    const dir = await cluster.tempDir('webhook-certs');
    const ca = await createCertificateAuthority('files-ca', 3_600_000);
    const write = async (): Promise<void> => {
      const serving = await issueServingCertificate(ca, { dnsNames: [], ipAddresses: ['127.0.0.1'] }, 600_000);
      await writeFile(join(dir, 'tls.key'), serving.keyPem);
      await writeFile(join(dir, 'tls.crt'), serving.certPem);
    };
    await write();
    await writeFile(join(dir, 'ca.crt'), ca.certPem);
    const filesPort = await freePort();
    const files = runOperators([LenientHooks], {
      kubeconfigPath: cluster.kubeconfigPath,
      logLevel: 'warn',
      webhooks: webhookSettings('files-hooks', filesPort, {
        certificates: {
          mode: 'files',
          certFile: join(dir, 'tls.crt'),
          keyFile: join(dir, 'tls.key'),
          caFile: join(dir, 'ca.crt'),
          checkIntervalMs: 200,
        },
      }),
    });
    try {
      await files.ready;
      expect(files.webhooks!.caBundle).toBe(ca.certPem);
      const labels = { 'ignore-test': 'yes' };
      expect((await apply(configMap('files-1', {}, labels))).stderr).toContain('refused while the server is up');
      const before = await servedCertificate(filesPort, ca.certPem);
      await write(); // a rotation, as cert-manager does it
      await waitFor(async () => (await servedCertificate(filesPort, ca.certPem)).serialNumber !== before.serialNumber, {
        timeoutMs: 10_000,
      });
      expect((await apply(configMap('files-2', {}, labels))).stderr).toContain('refused while the server is up');
    } finally {
      await files.stop();
    }
  });
});

describe('failure policy', () => {
  test('Ignore lets requests through while the server is down', async () => {
    const lenientPort = await freePort();
    const lenient = runOperators([LenientHooks], {
      kubeconfigPath: cluster.kubeconfigPath,
      logLevel: 'warn',
      webhooks: webhookSettings('lenient-hooks', lenientPort),
    });
    await lenient.ready;
    const labels = { 'ignore-test': 'yes' };
    const refused = await apply(configMap('lenient-1', {}, labels));
    expect(refused.stderr).toContain('refused while the server is up');
    await lenient.stop();
    const accepted = await apply(configMap('lenient-2', {}, labels));
    expect(accepted.code).toBe(0);
    expect(await stored('lenient-2')).toBeDefined();
  });
});
