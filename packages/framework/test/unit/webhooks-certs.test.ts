/**
 * The certificates: a CA, serving certificates it signs, when to renew, the trust bundle across a rotation. WebCrypto
 * only, no server.
 */
import { X509Certificate } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { trustBundle } from '../../src/webhooks/ca-secret.js';
import {
  certificateInfo,
  createCertificateAuthority,
  issueServingCertificate,
  renewalTime,
  splitBundle,
} from '../../src/webhooks/certs.js';

describe('certificates', () => {
  test('a serving certificate is signed by the CA, names the DNS names and IPs, and is for servers', async () => {
    const now = Date.now();
    const ca = await createCertificateAuthority('test-ca', 3_600_000, now);
    const serving = await issueServingCertificate(
      ca,
      { dnsNames: ['hooks.ops.svc'], ipAddresses: ['127.0.0.1'] },
      60_000,
      now,
    );
    const cert = new X509Certificate(serving.certPem);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(cert.checkHost('hooks.ops.svc')).toBe('hooks.ops.svc');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('other.svc')).toBeUndefined();
    expect(cert.ca).toBe(false);
    expect(new X509Certificate(ca.certPem).ca).toBe(true);
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
    const info = certificateInfo(serving.certPem);
    expect(info.notAfter).toBeLessThanOrEqual(now + 60_000);
    expect(info.notAfter).toBeGreaterThan(now + 50_000);
  });

  test('a serving certificate never outlives its CA', async () => {
    const now = Date.now();
    const ca = await createCertificateAuthority('short-ca', 10_000, now);
    const serving = await issueServingCertificate(ca, { dnsNames: ['a'], ipAddresses: [] }, 3_600_000, now);
    expect(certificateInfo(serving.certPem).notAfter).toBeLessThanOrEqual(certificateInfo(ca.certPem).notAfter);
  });

  test('a serving certificate needs a name', async () => {
    const ca = await createCertificateAuthority('ca', 10_000);
    await expect(issueServingCertificate(ca, { dnsNames: [], ipAddresses: [] }, 1000)).rejects.toThrow('at least one');
  });

  test('renewal comes after 2/3 of the life since issue', () => {
    expect(renewalTime(0, 90)).toBe(60);
    expect(renewalTime(100, 400, 0.5)).toBe(250);
  });

  test('the trust bundle holds the current CA and the previous ones still valid', async () => {
    const now = Date.now();
    const current = await createCertificateAuthority('new', 3_600_000, now);
    const previous = await createCertificateAuthority('old', 3_600_000, now);
    const expired = await createCertificateAuthority('expired', 1_000, now - 10_000);
    const bundle = trustBundle(current.certPem, `${previous.certPem}\n${expired.certPem}`, now);
    expect(splitBundle(bundle)).toEqual([current.certPem.trim(), previous.certPem.trim()]);
  });
});
