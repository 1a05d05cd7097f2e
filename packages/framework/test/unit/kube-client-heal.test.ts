/**
 * The pure decisions behind the API client's healing: how often credentials may be resolved again, when expiring
 * credentials are renewed, and which transport errors are TLS failures or stale pooled connections.
 */
import type http from 'node:http';
import { describe, expect, it } from 'vitest';
import { refreshTime } from '../../src/kube/connection.js';
import { isStaleSocket, isTlsFailure, markStaleSocket } from '../../src/kube/http.js';
import { ResolutionLimiter } from '../../src/kube/rate-limit.js';

/** A limiter on a clock the test moves. */
function limiterAt(start: number, options: { minIntervalMs: number; maxIntervalMs: number }) {
  const clock = { now: start };
  const limiter = new ResolutionLimiter({ ...options, now: () => clock.now });
  return { limiter, clock };
}

describe('ResolutionLimiter', () => {
  it('lets the first re-resolution through at once, then spaces them by the minimum interval', () => {
    const { limiter, clock } = limiterAt(1_000, { minIntervalMs: 5_000, maxIntervalMs: 60_000 });
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
    clock.now += 4_999;
    expect(limiter.tryAcquire()).toBe(false);
    clock.now += 1;
    expect(limiter.tryAcquire()).toBe(true);
  });

  it('doubles the interval after each re-resolution that did not help, up to the maximum', () => {
    const { limiter, clock } = limiterAt(0, { minIntervalMs: 1_000, maxIntervalMs: 5_000 });
    const gaps: number[] = [];
    let last = 0;
    expect(limiter.tryAcquire()).toBe(true);
    for (let i = 0; i < 5; i += 1) {
      clock.now = limiter.nextAllowedAt() - 1;
      expect(limiter.tryAcquire()).toBe(false);
      clock.now += 1;
      expect(limiter.tryAcquire()).toBe(true);
      gaps.push(clock.now - last);
      last = clock.now;
    }
    expect(gaps).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it('starts the backoff over once a request is accepted, keeping the minimum interval', () => {
    const { limiter, clock } = limiterAt(0, { minIntervalMs: 1_000, maxIntervalMs: 60_000 });
    for (let i = 0; i < 4; i += 1) {
      clock.now = Math.max(clock.now, limiter.nextAllowedAt());
      expect(limiter.tryAcquire()).toBe(true);
    }
    expect(limiter.nextAllowedAt() - clock.now).toBe(8_000);
    limiter.succeeded();
    expect(limiter.nextAllowedAt() - clock.now).toBe(1_000);
  });
});

describe('refreshTime', () => {
  it('renews the margin ahead of the expiry', () => {
    expect(refreshTime(0, 3_600_000, 60_000)).toBe(3_540_000);
  });

  it('renews a credential that lives shorter than twice the margin at half its remaining life', () => {
    expect(refreshTime(1_000, 61_000, 60_000)).toBe(31_000);
  });

  it('renews an already expired credential at once', () => {
    expect(refreshTime(10_000, 5_000, 60_000)).toBe(5_000);
  });
});

describe('transport error classification', () => {
  const withCode = (code: string): Error => Object.assign(new Error(code), { code });

  it('takes certificate and handshake errors for TLS failures, and nothing else', () => {
    for (const code of [
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'CERT_HAS_EXPIRED',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
      'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    ]) {
      expect(isTlsFailure(withCode(code)), code).toBe(true);
    }
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE']) {
      expect(isTlsFailure(withCode(code)), code).toBe(false);
    }
    expect(isTlsFailure(new Error('no code'))).toBe(false);
    expect(isTlsFailure(undefined)).toBe(false);
  });

  it('marks a reset only when the request went out on a reused keep-alive socket', () => {
    const request = (reusedSocket: boolean): http.ClientRequest => ({ reusedSocket }) as unknown as http.ClientRequest;
    const reset = withCode('ECONNRESET');
    markStaleSocket(reset, request(true));
    expect(isStaleSocket(reset)).toBe(true);

    const hangUp = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    markStaleSocket(hangUp, request(false));
    expect(isStaleSocket(hangUp)).toBe(false);

    const refused = withCode('ECONNREFUSED');
    markStaleSocket(refused, request(true));
    expect(isStaleSocket(refused)).toBe(false);
  });
});
