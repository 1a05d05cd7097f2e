/**
 * Key material for a test control plane: a throwaway CA, a serving certificate signed by it (so that clients, also
 * those inside node namespaces, verify TLS for real instead of skipping it), and the service-account signing key.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { runCommand } from '../exec.js';

/** Files of the serving PKI. */
export interface ServingPki {
  caPem: string;
  caCertPath: string;
  certPath: string;
  keyPath: string;
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * Creates `ca.crt`/`ca.key` and `serving.crt`/`serving.key` in `dir`. The serving certificate carries every entry
 * of `subjectAltNames` (IP addresses become IP SANs, anything else a DNS SAN).
 */
export async function createServingPki(dir: string, subjectAltNames: string[]): Promise<ServingPki> {
  const file = (name: string): string => path.join(dir, name);
  await runCommand([
    'openssl', 'req', '-x509', ...ecKey, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '30',
    '-subj', '/CN=opkit-testbed-ca', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  await runCommand([
    'openssl', 'req', '-new', ...ecKey, '-keyout', file('serving.key'), '-out', file('serving.csr'),
    '-subj', '/CN=kube-apiserver',
  ]); // prettier-ignore
  const sans = [...new Set(subjectAltNames)].map((name) => (isIP(name) ? `IP:${name}` : `DNS:${name}`));
  await writeFile(
    file('serving.ext'),
    [
      `subjectAltName=${sans.join(',')}`,
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  await runCommand([
    'openssl', 'x509', '-req', '-in', file('serving.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '30', '-extfile', file('serving.ext'),
    '-out', file('serving.crt'),
  ]); // prettier-ignore
  return {
    caPem: await readFile(file('ca.crt'), 'utf8'),
    caCertPath: file('ca.crt'),
    certPath: file('serving.crt'),
    keyPath: file('serving.key'),
  };
}

/** Writes an RSA key pair for signing and verifying service-account tokens; returns the two paths. */
export async function createServiceAccountKey(dir: string): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const privateKeyPath = path.join(dir, 'service-account.key');
  const publicKeyPath = path.join(dir, 'service-account.pub');
  await writeFile(privateKeyPath, privateKey, { mode: 0o600 });
  await writeFile(publicKeyPath, publicKey);
  return { privateKeyPath, publicKeyPath };
}
