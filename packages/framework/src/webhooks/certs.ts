/**
 * Certificates for the webhook server: a CA, serving certificates it signs, and when to renew them. No I/O: keys are
 * made with WebCrypto (ECDSA P-256: fast to generate, small, accepted by every API server), certificates with
 * `@peculiar/x509`.
 *
 * Why a CA rather than one self-signed serving certificate: the API server trusts the configuration's `caBundle`.
 * With a CA shared by every replica (kept in a Secret), each replica issues and renews its own serving certificate
 * without touching the bundle, and the bundle only changes when the CA itself is rotated.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// The library's types name the DOM's WebCrypto types; Node's are the same objects under node:crypto's names.
x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Issued certificates start a little in the past: the API server's clock may be behind ours. */
const BACKDATE_MS = 5 * 60_000;

/** A certificate and its private key, PEM-encoded. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

/** What a serving certificate is for. */
export interface ServingIdentity {
  /** Subject alternative names of type DNS (e.g. `svc.ns.svc`, `localhost`). */
  dnsNames: readonly string[];
  /** Subject alternative names of type IP (e.g. `127.0.0.1`). */
  ipAddresses: readonly string[];
}

function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] as number) & 0x7f; // a positive INTEGER
  return Buffer.from(bytes).toString('hex');
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importSigningKey(pem: string): Promise<CryptoKey> {
  const [der] = x509.PemConverter.decode(pem);
  if (!der) throw new Error('no PEM block in the CA key');
  return webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']);
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
}

/** A new self-signed CA valid from `now` (back-dated a little) for `validityMs`. */
export async function createCertificateAuthority(
  commonName: string,
  validityMs: number,
  now = Date.now(),
): Promise<KeyPair> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + validityMs),
    signingAlgorithm: ALGORITHM,
    keys: keys as never,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/** A serving certificate for `identity`, signed by `ca`, valid for `validityMs` (never past the CA's end). */
export async function issueServingCertificate(
  ca: KeyPair,
  identity: ServingIdentity,
  validityMs: number,
  now = Date.now(),
): Promise<KeyPair> {
  if (identity.dnsNames.length + identity.ipAddresses.length === 0) {
    throw new Error('a serving certificate needs at least one DNS name or IP address');
  }
  const caCert = new x509.X509Certificate(ca.certPem);
  const keys = await generateKeys();
  const notAfter = new Date(Math.min(now + validityMs, caCert.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${identity.dnsNames[0] ?? identity.ipAddresses[0]}`,
    issuer: caCert.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter,
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey as never,
    signingKey: (await importSigningKey(ca.keyPem)) as never,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...identity.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...identity.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/** When a certificate is valid, and its serial number. */
export interface CertificateInfo {
  notBefore: number;
  notAfter: number;
  serialNumber: string;
}

/** Reads the validity and serial number of the first certificate in `pem`. */
export function certificateInfo(pem: string): CertificateInfo {
  const cert = new x509.X509Certificate(pem);
  return { notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime(), serialNumber: cert.serialNumber };
}

/** Every certificate in a PEM bundle, in order (a bundle is several CERTIFICATE blocks). */
export function splitBundle(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * When to renew a certificate issued at `issuedAt` and valid until `notAfter`: once `renewFraction` of its life has
 * passed (2/3 by default, as many ACME clients do), so a renewal that fails has a third of the life left for retries.
 * `issuedAt` rather than `notBefore`, which is back-dated.
 */
export function renewalTime(issuedAt: number, notAfter: number, renewFraction = 2 / 3): number {
  return issuedAt + Math.max(0, notAfter - issuedAt) * renewFraction;
}

/** When a certificate we did not issue ourselves was issued, from its back-dated `notBefore`. */
export function issuedAt(info: CertificateInfo): number {
  return info.notBefore + BACKDATE_MS;
}
