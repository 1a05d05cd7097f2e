/**
 * HTTP plumbing of the API client: response bodies, error decoding, the watch stream reader, and the classification
 * of transport errors that decides what the client may heal or retry.
 */
import type http from 'node:http';
import { NdjsonParser } from './ndjson.js';
import { parseRetryAfter } from './retry.js';
import { ApiError } from './types.js';

/** Closes the pool's idle keep-alive sockets; sockets in use are left to their requests. */
export function destroyIdleSockets(agent: http.Agent): void {
  for (const sockets of Object.values(agent.freeSockets)) {
    for (const socket of sockets ?? []) socket.destroy();
  }
}

/**
 * Whether a transport error is a failed TLS handshake or certificate check: the server's certificate is not signed by
 * our CA (CA rotated), has expired or names another host, or the server refused our client certificate. The request
 * never reached HTTP, so the server has not acted on it, and fresh credentials may fix it.
 */
export function isTlsFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return false;
  return (
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_OSSL_') ||
    code.includes('CERT') ||
    code.includes('SIGNATURE') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'INVALID_CA'
  );
}

// Errors of requests sent on a pooled keep-alive socket that the server (or a middlebox) had already closed.
const staleSocketErrors = new WeakSet<object>();

/**
 * Marks `err` as the failure of a request written to a reused keep-alive socket that was reset before any response
 * byte arrived: the server closed the idle connection as the request went out, so it never read the request.
 */
export function markStaleSocket(err: unknown, req: http.ClientRequest): void {
  const code = (err as { code?: unknown } | undefined)?.code;
  const reset = code === 'ECONNRESET' || code === 'EPIPE' || (err as Error | undefined)?.message === 'socket hang up';
  if (req.reusedSocket && reset && typeof err === 'object' && err !== null) staleSocketErrors.add(err);
}

/** Whether {@link markStaleSocket} marked `err`: an idempotent request may be sent again on a new connection. */
export function isStaleSocket(err: unknown): boolean {
  return typeof err === 'object' && err !== null && staleSocketErrors.has(err);
}

/** Collects a response body. */
export function readBody(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    // 'close' after 'end' is normal; without a complete body the connection dropped mid-response.
    res.on('close', () => {
      if (!res.complete) reject(new Error('response closed before it ended'));
    });
  });
}

/** Turns an error response into an {@link ApiError}, with the API's `Status` message, reason and `Retry-After`. */
export async function toApiError(res: http.IncomingMessage): Promise<ApiError> {
  const status = res.statusCode ?? 0;
  const retryAfter = parseRetryAfter(res.headers['retry-after']);
  let message = `HTTP ${status} ${res.statusMessage ?? ''}`.trim();
  let reason: string | undefined;
  try {
    const body = (await readBody(res)).toString('utf8');
    try {
      const decoded = JSON.parse(body) as { kind?: string; message?: string; reason?: string };
      if (decoded.message) message = `${message}: ${decoded.message}`;
      reason = decoded.reason;
    } catch {
      if (body.trim()) message = `${message}: ${body.trim().slice(0, 500)}`;
    }
  } catch {
    // The status line is enough.
  }
  return new ApiError(status, message, reason, retryAfter);
}

/**
 * Streams newline-delimited JSON to `onValue`; resolves when the server ends the stream cleanly, rejects when the
 * connection drops mid-stream, a line is not JSON, `onValue` throws, or `signal` aborts (with its reason).
 */
export function consumeStream(
  res: http.IncomingMessage,
  onValue: (value: unknown) => void,
  signal: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else {
        res.destroy();
        reject(err);
      }
    };
    const onAbort = (): void => finish(signal.reason ?? new Error('watch aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    const parser = new NdjsonParser(onValue);
    res.on('data', (chunk: Buffer) => {
      if (done) return;
      try {
        parser.push(chunk);
      } catch (err) {
        finish(err);
      }
    });
    res.on('end', () => {
      try {
        parser.end();
        finish();
      } catch (err) {
        finish(err);
      }
    });
    res.on('error', (err) => finish(err));
    // 'close' without 'end' means the connection dropped mid-stream (reset, proxy cut, API server killed).
    res.on('close', () => finish(new Error('watch stream closed before it ended')));
  });
}
