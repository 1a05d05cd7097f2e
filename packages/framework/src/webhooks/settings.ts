/**
 * Settings of the webhook server (`RuntimeSettings.webhooks`, `opkit run --webhook-*`), with every default in one
 * place. Pure.
 */
import { isIP } from 'node:net';
import { kebabCase } from '../decorators/admission.js';
import type { ClientConfigBase } from './routes.js';

/** The port controller-runtime's webhook server listens on, and so ours by default. */
export const DEFAULT_WEBHOOK_PORT = 9443;
/** Request bodies above this are refused: an AdmissionReview carries the object and the old one (etcd's limit is ~1.5 MiB each). */
export const DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024;
/** The API server waits 30 s at most for a webhook; a client slower than that to send its request is cut off. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DAY_MS = 24 * 60 * 60_000;

/** The framework makes and renews the certificates (the default). */
export interface ManagedCertificates {
  mode?: 'managed';
  /**
   * Where the CA shared by every replica is kept: a Secret, created once by whichever replica comes first (create if
   * absent). Namespace defaults to `$POD_NAMESPACE`, then `default`; name to `<configuration name>-webhook-ca`.
   */
  secret?: { namespace?: string; name?: string };
  /**
   * Names in the serving certificate. Default: the host of `clientConfig.url`, or the Service's `<name>.<namespace>.svc`
   * and `<name>.<namespace>.svc.cluster.local`.
   */
  dnsNames?: string[];
  /** IP addresses in the serving certificate. Default: the host of `clientConfig.url` when it is an IP address. */
  ipAddresses?: string[];
  /** Life of a new CA. Defaults to 10 years; it is rotated (the old one kept in the bundle) after 2/3 of it. */
  caValidityMs?: number;
  /** Life of a serving certificate. Defaults to 90 days; renewed after 2/3 of it. */
  servingValidityMs?: number;
  /** How often the CA Secret is read again (another replica may have rotated it). Defaults to 60 000. */
  checkIntervalMs?: number;
}

/** Certificates made by someone else (cert-manager, a mounted Secret), re-read when they change. */
export interface CertificateFiles {
  mode: 'files';
  /** PEM serving certificate (with its chain). */
  certFile: string;
  /** PEM private key. */
  keyFile: string;
  /** PEM CA bundle that signs it, written as `caBundle` (cert-manager's `ca.crt`). Required unless `configuration: 'none'`. */
  caFile?: string;
  /** How often the files are read again. Defaults to 10 000 (kubelet updates a mounted Secret within about a minute). */
  checkIntervalMs?: number;
}

/** Settings of the webhook server. */
export interface WebhookSettings {
  /** Address to bind. Defaults to `0.0.0.0`. */
  host?: string;
  /** Port to bind; 0 picks a free one. Defaults to 9443. */
  port?: number;
  /** Name of the Validating/MutatingWebhookConfiguration. Defaults to the first operator's name in kebab case. */
  name?: string;
  /**
   * Where the API server reaches this server: `{ url: 'https://host:port' }` (local runs, tests; the handler's path
   * is appended) or `{ service: { namespace, name, port? } }` (in a cluster; port defaults to 443). Required unless
   * `configuration` is `'none'`.
   */
  clientConfig?: ClientConfigBase;
  /**
   * Who owns the webhook configurations. `'apply'` (default): the framework creates and updates them (server-side
   * apply), one webhook per handler. `'ca-bundle'`: they are shipped as YAML; the framework only keeps their
   * `caBundle` current. `'none'`: the framework writes nothing (e.g. cert-manager's CA injector fills `caBundle`).
   */
  configuration?: 'apply' | 'ca-bundle' | 'none';
  /** Defaults to managed certificates. */
  certificates?: ManagedCertificates | CertificateFiles;
  /** Larger request bodies are refused with 413. Defaults to 8 MiB. */
  maxRequestBytes?: number;
  /** A request must arrive whole within this. Defaults to 30 000. */
  requestTimeoutMs?: number;
}

/** Managed certificates after defaults. */
export interface ResolvedManagedCertificates {
  readonly mode: 'managed';
  readonly secret: { readonly namespace: string; readonly name: string };
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly caValidityMs: number;
  readonly servingValidityMs: number;
  readonly checkIntervalMs: number;
}

/** Certificate files after defaults. */
export interface ResolvedCertificateFiles {
  readonly mode: 'files';
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string | undefined;
  readonly checkIntervalMs: number;
}

/** Webhook settings after defaults. */
export interface ResolvedWebhookSettings {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly clientConfig: ClientConfigBase | undefined;
  readonly configuration: 'apply' | 'ca-bundle' | 'none';
  readonly certificates: ResolvedManagedCertificates | ResolvedCertificateFiles;
  readonly maxRequestBytes: number;
  readonly requestTimeoutMs: number;
}

const NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function positive(what: string, value: number | undefined, fallback: number): number {
  const resolved = value ?? fallback;
  if (!(Number.isFinite(resolved) && resolved > 0)) throw new Error(`webhooks: ${what} must be positive, not ${value}`);
  return resolved;
}

/** The names a serving certificate needs for `clientConfig`. */
export function defaultIdentity(clientConfig: ClientConfigBase | undefined): {
  dnsNames: string[];
  ipAddresses: string[];
} {
  if (!clientConfig) return { dnsNames: [], ipAddresses: [] };
  if ('url' in clientConfig) {
    const host = new URL(clientConfig.url).hostname.replace(/^\[|\]$/g, '');
    return isIP(host) ? { dnsNames: [], ipAddresses: [host] } : { dnsNames: [host], ipAddresses: [] };
  }
  const { name, namespace } = clientConfig.service;
  return { dnsNames: [`${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`], ipAddresses: [] };
}

function resolveClientConfig(clientConfig: ClientConfigBase | undefined): ClientConfigBase | undefined {
  if (!clientConfig) return undefined;
  if ('url' in clientConfig) {
    let url: URL;
    try {
      url = new URL(clientConfig.url);
    } catch {
      throw new Error(`webhooks: clientConfig.url is not a URL: ${JSON.stringify(clientConfig.url)}`);
    }
    if (url.protocol !== 'https:')
      throw new Error('webhooks: clientConfig.url must be https (the API server requires it)');
    if (url.search || url.hash) throw new Error('webhooks: clientConfig.url must have no query or fragment');
    return { url: clientConfig.url };
  }
  const { namespace, name, port } = clientConfig.service ?? {};
  if (!namespace || !name) throw new Error('webhooks: clientConfig.service needs a namespace and a name');
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) {
    throw new Error(`webhooks: clientConfig.service.port must be a port number, not ${port}`);
  }
  return { service: { namespace, name, ...(port ? { port } : {}) } };
}

/** Applies the defaults; throws a message naming the setting for anything invalid. */
export function resolveWebhookSettings(
  settings: WebhookSettings,
  operatorNames: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ResolvedWebhookSettings {
  const port = settings.port ?? DEFAULT_WEBHOOK_PORT;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535))
    throw new Error(`webhooks: port must be 0-65535, not ${port}`);
  const name = settings.name ?? kebabCase(operatorNames[0] ?? '');
  if (!NAME_PATTERN.test(name)) {
    throw new Error(`webhooks: name must be a DNS subdomain (lower case), not ${JSON.stringify(name)}`);
  }
  const configuration = settings.configuration ?? 'apply';
  if (!['apply', 'ca-bundle', 'none'].includes(configuration)) {
    throw new Error(`webhooks: configuration must be apply, ca-bundle or none, not ${JSON.stringify(configuration)}`);
  }
  const clientConfig = resolveClientConfig(settings.clientConfig);
  if (configuration === 'apply' && !clientConfig) {
    throw new Error(
      "webhooks: clientConfig (a url or a service) is needed to write the configuration (or set configuration: 'none')",
    );
  }
  const certificates = settings.certificates ?? {};
  let resolvedCertificates: ResolvedManagedCertificates | ResolvedCertificateFiles;
  if (certificates.mode === 'files') {
    if (!certificates.certFile || !certificates.keyFile)
      throw new Error('webhooks: certificate files need certFile and keyFile');
    if (configuration !== 'none' && !certificates.caFile) {
      throw new Error("webhooks: certificate files need caFile to write caBundle (or set configuration: 'none')");
    }
    resolvedCertificates = {
      mode: 'files',
      certFile: certificates.certFile,
      keyFile: certificates.keyFile,
      caFile: certificates.caFile,
      checkIntervalMs: positive('certificates.checkIntervalMs', certificates.checkIntervalMs, 10_000),
    };
  } else if (certificates.mode === undefined || certificates.mode === 'managed') {
    const identity = defaultIdentity(clientConfig);
    const dnsNames = certificates.dnsNames ?? identity.dnsNames;
    const ipAddresses = certificates.ipAddresses ?? identity.ipAddresses;
    for (const ip of ipAddresses)
      if (!isIP(ip)) throw new Error(`webhooks: ${JSON.stringify(ip)} is not an IP address`);
    if (dnsNames.length + ipAddresses.length === 0) {
      throw new Error(
        'webhooks: managed certificates need dnsNames or ipAddresses (or a clientConfig to derive them from)',
      );
    }
    const caValidityMs = positive('certificates.caValidityMs', certificates.caValidityMs, 3650 * DAY_MS);
    const servingValidityMs = positive('certificates.servingValidityMs', certificates.servingValidityMs, 90 * DAY_MS);
    if (servingValidityMs >= caValidityMs) {
      throw new Error('webhooks: certificates.servingValidityMs must be shorter than caValidityMs');
    }
    resolvedCertificates = {
      mode: 'managed',
      secret: {
        namespace: certificates.secret?.namespace ?? (env.POD_NAMESPACE || 'default'),
        name: certificates.secret?.name ?? `${name}-webhook-ca`,
      },
      dnsNames: [...dnsNames],
      ipAddresses: [...ipAddresses],
      caValidityMs,
      servingValidityMs,
      checkIntervalMs: positive('certificates.checkIntervalMs', certificates.checkIntervalMs, 60_000),
    };
  } else {
    throw new Error(
      `webhooks: certificates.mode must be managed or files, not ${JSON.stringify((certificates as { mode: unknown }).mode)}`,
    );
  }
  return Object.freeze({
    host: settings.host ?? '0.0.0.0',
    port,
    name,
    clientConfig,
    configuration,
    certificates: Object.freeze(resolvedCertificates),
    maxRequestBytes: positive('maxRequestBytes', settings.maxRequestBytes, DEFAULT_MAX_REQUEST_BYTES),
    requestTimeoutMs: positive('requestTimeoutMs', settings.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
  });
}

/** The runtime settings' webhook part (`runOperators(classes, { webhooks })`). */
export interface WebhookRuntimeSettings {
  /**
   * Serve the classes' `@Validate`/`@Mutate` handlers (see docs/webhooks.md). Defaults to off: without it, admission
   * handlers are not served (a warning says so).
   */
  webhooks?: WebhookSettings;
}
