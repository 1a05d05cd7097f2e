/**
 * `startWebhooks`: the webhook server with its certificates and configurations kept current. The runtime starts it
 * before leader election, on every replica: admission must not wait for (or depend on) the leader.
 *
 * Life: resolve settings and routes (definition errors throw), get the certificates (managed: the shared CA from its
 * Secret, created if absent, and a serving certificate issued by this replica; files: read them), listen, then write
 * the configurations (a failed write is logged and retried). Then, every `checkIntervalMs`: re-read the CA
 * Secret or the files; when the trusted bundle changed, write it first and only then serve a certificate that needs
 * it; renew the serving certificate after 2/3 of its life.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { describeError } from '../core/errors.js';
import type { AdmissionContext, AdmissionSpec } from '../decorators/admission.js';
import type { KubeApi } from '../kube/types.js';
import { CASecret } from './ca-secret.js';
import { certificateInfo, issueServingCertificate, renewalTime, type KeyPair } from './certs.js';
import { writeConfigurations } from './configuration.js';
import { buildRoutes, type AdmissionResource, type AdmissionRoute } from './routes.js';
import { startWebhookServer, type WebhookServer } from './server.js';
import {
  resolveWebhookSettings,
  type ResolvedCertificateFiles,
  type ResolvedManagedCertificates,
  type ResolvedWebhookSettings,
  type WebhookSettings,
} from './settings.js';

/** After a CA change is written, how long the API server gets to load the new bundle before a certificate needs it. */
const BUNDLE_PROPAGATION_MS = 2_000;
/** Retry pause of a failed configuration write. */
const WRITE_RETRY_MS = 5_000;

/** One operator class's admission handlers, with the instance their methods run on. */
export interface AdmissionOperator {
  name: string;
  resource: AdmissionResource;
  handlers: readonly AdmissionSpec[];
  instance: object;
}

/** Options of {@link startWebhooks}. */
export interface StartWebhooksOptions {
  settings: WebhookSettings;
  operators: readonly AdmissionOperator[];
  api: KubeApi;
  logger: Logger;
  /** Where the request metrics go (the runtime's registry, served on `/metrics`). */
  registry: Registry;
  /** Field manager of the configuration writes. */
  fieldManager: string;
}

/** The running webhook server, as the runtime exposes it (`runtime.webhooks`). */
export interface WebhookHandle {
  readonly port: number;
  readonly settings: ResolvedWebhookSettings;
  /** The PEM bundle written as `caBundle`. */
  readonly caBundle: string;
  /** The PEM certificate served now. */
  readonly servingCertificate: string;
  /** Managed: issues a new serving certificate now. Files: reads the files now. */
  renewCertificate(): Promise<void>;
  /** Managed: replaces the shared CA now (the previous one stays trusted until it expires), as its expiry would. */
  rotateCA(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the server; rejects for bad settings or when the certificates cannot be had. */
export async function startWebhooks(options: StartWebhooksOptions): Promise<WebhookHandle> {
  const settings = resolveWebhookSettings(
    options.settings,
    options.operators.map((operator) => operator.name),
  );
  const routes = buildRoutes(options.operators);
  if (routes.size === 0) throw new Error('webhooks: no @Validate or @Mutate handler in the operator classes');
  const instances = new Map(options.operators.map((operator) => [operator.name, operator.instance]));
  const webhooks = new Webhooks(options, settings, routes);
  await webhooks.start((route, context) => {
    const instance = instances.get(route.operator) as Record<string | symbol, unknown>;
    const method = instance[route.spec.method] as (ctx: AdmissionContext) => unknown;
    return method.call(instance, context);
  });
  return webhooks;
}

class Webhooks implements WebhookHandle {
  private server: WebhookServer | undefined;
  private serving!: KeyPair;
  private servingIssuedAt = 0;
  private ca: KeyPair | undefined;
  private bundle = '';
  private writtenBundle: string | undefined;
  private readonly caSecret: CASecret | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Checks run one at a time: a timer tick and a forced renewal never interleave. */
  private queue: Promise<void> = Promise.resolve();
  private readonly logger: Logger;

  constructor(
    private readonly options: StartWebhooksOptions,
    readonly settings: ResolvedWebhookSettings,
    private readonly routes: Map<string, AdmissionRoute>,
  ) {
    this.logger = options.logger.child({ component: 'webhooks' });
    const certificates = settings.certificates;
    if (certificates.mode === 'managed') {
      this.caSecret = new CASecret({
        api: options.api,
        ...certificates.secret,
        validityMs: certificates.caValidityMs,
        commonName: `${settings.name}-webhook-ca`,
        logger: this.logger,
      });
    }
  }

  get port(): number {
    return this.server?.port ?? 0;
  }

  get caBundle(): string {
    return this.bundle;
  }

  get servingCertificate(): string {
    return this.serving.certPem;
  }

  async start(invoke: Parameters<typeof startWebhookServer>[0]['invoke']): Promise<void> {
    const { settings, options } = this;
    if (this.caSecret) {
      const stored = await this.caSecret.load();
      this.ca = stored.ca;
      this.bundle = stored.bundle;
      await this.issue();
    } else {
      const files = await readCertificateFiles(settings.certificates as ResolvedCertificateFiles);
      this.serving = files.serving;
      this.bundle = files.bundle ?? '';
    }
    this.server = await startWebhookServer({
      host: settings.host,
      port: settings.port,
      routes: this.routes,
      certificate: this.serving,
      invoke,
      logger: this.logger,
      registry: options.registry,
      maxRequestBytes: settings.maxRequestBytes,
      requestTimeoutMs: settings.requestTimeoutMs,
    });
    this.logger.info(
      { port: this.server.port, routes: [...this.routes.keys()], configuration: settings.name },
      'webhook server listening',
    );
    // Only once it listens: the API server calls the webhooks as soon as it loads the configuration.
    await this.writeBundle();
    this.schedule();
  }

  renewCertificate(): Promise<void> {
    return this.serialized(async () => {
      if (this.caSecret) await this.issue();
      else await this.checkFiles();
    });
  }

  rotateCA(): Promise<void> {
    return this.serialized(() => this.checkManaged(true));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.queue.catch(() => undefined);
    await this.server?.close();
  }

  private serialized(work: () => Promise<void>): Promise<void> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private schedule(): void {
    if (this.closed) return;
    const interval = this.settings.certificates.checkIntervalMs;
    const delay = this.writtenBundle === this.bundle ? interval : Math.min(interval, WRITE_RETRY_MS);
    this.timer = setTimeout(() => {
      void this.serialized(() => (this.caSecret ? this.checkManaged(false) : this.checkFiles()))
        // An unreachable API server or files caught mid-rotation: one line, no stack (nothing here is a bug).
        .catch((error: unknown) =>
          this.logger.warn({ reason: describeError(error) }, 'webhook certificate check failed: retrying'),
        )
        .finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  /** Writes the bundle unless it is written already; a failure is logged and retried by the next check. */
  private async writeBundle(): Promise<boolean> {
    if (this.writtenBundle === this.bundle) return true;
    const { options, settings } = this;
    try {
      await writeConfigurations(
        options.api,
        settings,
        this.routes.values(),
        this.bundle,
        this.logger,
        options.fieldManager,
      );
      this.writtenBundle = this.bundle;
      if (settings.configuration !== 'none') {
        this.logger.info(
          { configuration: settings.name, mode: settings.configuration },
          'webhook configuration written',
        );
      }
      return true;
    } catch (error) {
      this.logger.warn(
        { reason: describeError(error), configuration: settings.name },
        'cannot write the webhook configuration: retrying',
      );
      return false;
    }
  }

  private async issue(): Promise<void> {
    const certificates = this.settings.certificates as ResolvedManagedCertificates;
    const now = Date.now();
    this.serving = await issueServingCertificate(this.ca as KeyPair, certificates, certificates.servingValidityMs, now);
    this.servingIssuedAt = now;
    this.server?.setCertificate(this.serving);
    if (this.server) {
      const { serialNumber, notAfter } = certificateInfo(this.serving.certPem);
      this.logger.info(
        { serialNumber, notAfter: new Date(notAfter).toISOString() },
        'webhook serving certificate renewed',
      );
    }
  }

  private async checkManaged(forceRotation: boolean): Promise<void> {
    const stored = await (this.caSecret as CASecret).load(Date.now(), forceRotation);
    const caChanged = stored.ca.certPem !== this.ca?.certPem;
    this.bundle = stored.bundle;
    if (!(await this.writeBundle())) return; // keep serving what the written bundle trusts
    if (caChanged) {
      // The API server loads a changed configuration asynchronously: give it a moment before a certificate needs it.
      if (this.settings.configuration !== 'none')
        await new Promise((resolve) => setTimeout(resolve, BUNDLE_PROPAGATION_MS));
      this.ca = stored.ca;
      await this.issue();
      return;
    }
    const { notAfter } = certificateInfo(this.serving.certPem);
    if (Date.now() >= renewalTime(this.servingIssuedAt, notAfter)) await this.issue();
  }

  private async checkFiles(): Promise<void> {
    const files = await readCertificateFiles(this.settings.certificates as ResolvedCertificateFiles);
    if (files.bundle !== undefined) this.bundle = files.bundle;
    if (!(await this.writeBundle())) return;
    if (files.serving.certPem !== this.serving.certPem || files.serving.keyPem !== this.serving.keyPem) {
      this.serving = files.serving;
      this.server?.setCertificate(files.serving);
      this.logger.info(
        { serialNumber: certificateInfo(files.serving.certPem).serialNumber },
        'webhook certificate files changed: serving the new certificate',
      );
    }
  }
}

/** Reads the files; throws when the certificate and key do not make a usable pair (e.g. caught mid-rotation). */
async function readCertificateFiles(
  files: ResolvedCertificateFiles,
): Promise<{ serving: KeyPair; bundle: string | undefined }> {
  const [certPem, keyPem, bundle] = await Promise.all([
    readFile(files.certFile, 'utf8'),
    readFile(files.keyFile, 'utf8'),
    files.caFile ? readFile(files.caFile, 'utf8') : Promise.resolve(undefined),
  ]);
  createSecureContext({ cert: certPem, key: keyPem }); // throws for a key that does not match
  return { serving: { certPem, keyPem }, bundle };
}
