/**
 * The CA shared by every replica, kept in a Secret: `ca.crt`, `ca.key`, and after a rotation `ca-previous.crt`.
 *
 * Guarantees:
 * - **One CA for all replicas.** The first replica to find no Secret creates it (create, not update: a 409 means
 *   another replica won, and its CA is read and used). So every replica issues serving certificates from the same
 *   CA, and the `caBundle` that any of them writes trusts all of them.
 * - **Rotation without a gap.** A CA past 2/3 of its life is replaced by a guarded patch (`test` on the current
 *   certificate: of two replicas rotating at once, one wins, the other reads the winner's); the old certificate
 *   stays in the bundle until it expires, so replicas still serving a certificate it signed stay trusted until they
 *   read the Secret again and re-issue.
 */
import type { Logger } from 'pino';
import { ApiError, isNotFound, type KubeApi, type KubeObject, type ResourceRef } from '../kube/types.js';
import {
  certificateInfo,
  createCertificateAuthority,
  issuedAt,
  renewalTime,
  splitBundle,
  type KeyPair,
} from './certs.js';

const SECRETS: ResourceRef = { group: '', version: 'v1', plural: 'secrets', namespaced: true };
const CERT_KEY = 'ca.crt';
const KEY_KEY = 'ca.key';
const PREVIOUS_KEY = 'ca-previous.crt';

/** The CA as the Secret holds it. */
export interface StoredCA {
  ca: KeyPair;
  /** The PEM bundle to trust: the current CA, and the previous one while it is still valid. */
  bundle: string;
}

interface Secret extends KubeObject {
  data?: Record<string, string>;
}

function decode(value: string | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

function encode(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64');
}

/** The bundle of `current` and the still-valid certificates of `previous`. */
export function trustBundle(current: string, previous: string | undefined, now = Date.now()): string {
  const stillValid = splitBundle(previous ?? '').filter((pem) => certificateInfo(pem).notAfter > now);
  return [current.trim(), ...stillValid].join('\n') + '\n';
}

/** Options of {@link CASecret}. */
export interface CASecretOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  /** Life of a CA this replica creates. */
  validityMs: number;
  /** The CA's common name. */
  commonName: string;
  logger: Logger;
}

/** Reads, creates and rotates the shared CA. */
export class CASecret {
  constructor(private readonly options: CASecretOptions) {}

  /** The CA, created if absent and rotated if due (or if `forceRotation`). */
  async load(now = Date.now(), forceRotation = false): Promise<StoredCA> {
    const secret = await this.read();
    if (!secret) return this.create(now);
    const stored = this.parse(secret, now);
    if (!stored) {
      this.options.logger.warn({ secret: this.label }, 'the webhook CA Secret holds no usable CA: replacing it');
      return this.rotate(secret, now);
    }
    const info = certificateInfo(stored.ca.certPem);
    if (forceRotation || now >= renewalTime(issuedAt(info), info.notAfter)) return this.rotate(secret, now);
    return stored;
  }

  private get label(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private async read(): Promise<Secret | undefined> {
    try {
      return await this.options.api.get<Secret>(SECRETS, this.options.name, this.options.namespace);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private parse(secret: Secret, now: number): StoredCA | undefined {
    const certPem = decode(secret.data?.[CERT_KEY]);
    const keyPem = decode(secret.data?.[KEY_KEY]);
    if (!certPem || !keyPem) return undefined;
    try {
      if (certificateInfo(certPem).notAfter <= now) return undefined;
      return { ca: { certPem, keyPem }, bundle: trustBundle(certPem, decode(secret.data?.[PREVIOUS_KEY]), now) };
    } catch {
      return undefined;
    }
  }

  private async create(now: number): Promise<StoredCA> {
    const { api, namespace, name, logger } = this.options;
    const ca = await this.newCA(now);
    const body = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'opkit' } },
      type: 'Opaque',
      data: { [CERT_KEY]: encode(ca.certPem), [KEY_KEY]: encode(ca.keyPem) },
    };
    try {
      await api.create(SECRETS, body, namespace);
      logger.info({ secret: this.label }, 'webhook CA created');
      return { ca, bundle: trustBundle(ca.certPem, undefined, now) };
    } catch (error) {
      // Another replica created it first: use theirs.
      if (error instanceof ApiError && error.statusCode === 409) return this.load(now);
      throw error;
    }
  }

  private async rotate(secret: Secret, now: number): Promise<StoredCA> {
    const { api, namespace, name, logger } = this.options;
    const ca = await this.newCA(now);
    const oldCert = decode(secret.data?.[CERT_KEY]);
    const previous = oldCert ? trustBundle(oldCert, undefined, now).trim() : undefined;
    const data: Record<string, string> = { [CERT_KEY]: encode(ca.certPem), [KEY_KEY]: encode(ca.keyPem) };
    if (previous) data[PREVIOUS_KEY] = encode(previous);
    // Guarded by the certificate this replica saw: of two replicas rotating at once, the second one's test fails.
    const current = secret.data?.[CERT_KEY];
    const guard = current === undefined ? [] : [{ op: 'test', path: `/data/${CERT_KEY}`, value: current }];
    try {
      await api.patch(SECRETS, name, [...guard, { op: 'add', path: '/data', value: data }], {
        namespace,
        type: 'json',
      });
    } catch (error) {
      if (error instanceof ApiError && (error.statusCode === 422 || error.statusCode === 409)) {
        const winner = await this.read();
        const stored = winner && this.parse(winner, now);
        if (stored) return stored;
      }
      throw error;
    }
    logger.info({ secret: this.label }, 'webhook CA rotated: the previous CA stays trusted until it expires');
    return { ca, bundle: trustBundle(ca.certPem, previous, now) };
  }

  private newCA(now: number): Promise<KeyPair> {
    return createCertificateAuthority(this.options.commonName, this.options.validityMs, now);
  }
}
