/** Minimal HTTPS access to the API server with a bearer token (no client library needed for set-up calls). */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

/** Where the API server is and how to authenticate. */
export interface ApiCredentials {
  server: string;
  caPem: string;
  token: string;
}

/** A decoded response: `body` is parsed JSON when the response was JSON, else the raw text. */
export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  text: string;
}

/** Options of {@link apiRequest}. */
export interface ApiRequestOptions {
  /** Content type of the body. Defaults to `application/json` (`application/merge-patch+json` for PATCH). */
  contentType?: string;
  /** Abort after this many milliseconds. Defaults to 30 000. */
  timeoutMs?: number;
}

/** Sends one request; resolves with any status (callers decide what is an error). */
export function apiRequest<T = unknown>(
  credentials: ApiCredentials,
  method: string,
  path: string,
  body?: unknown,
  options: ApiRequestOptions = {},
): Promise<ApiResponse<T>> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const contentType = options.contentType ?? (method === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
  return new Promise((resolve, reject) => {
    const request = https.request(new URL(path, credentials.server), {
      method,
      ca: credentials.caPem,
      agent: false,
      timeout: options.timeoutMs ?? 30_000,
      headers: {
        authorization: `Bearer ${credentials.token}`,
        accept: 'application/json',
        ...(payload === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }),
      },
    });
    request.once('timeout', () => request.destroy(new Error(`${method} ${path} timed out`)));
    request.once('error', reject);
    request.once('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('error', reject);
      response.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        if ((response.headers['content-type'] ?? '').includes('json')) {
          try {
            parsed = JSON.parse(text);
          } catch {
            // Leave the text as is.
          }
        }
        resolve({ status: response.statusCode ?? 0, body: parsed as T, text });
      });
    });
    request.end(payload);
  });
}

/** Like {@link apiRequest}, but throws unless the status is 2xx (or listed in `accept`). */
export async function apiCall<T = unknown>(
  credentials: ApiCredentials,
  method: string,
  path: string,
  body?: unknown,
  accept: number[] = [],
): Promise<ApiResponse<T>> {
  const response = await apiRequest<T>(credentials, method, path, body);
  if ((response.status < 200 || response.status >= 300) && !accept.includes(response.status)) {
    throw new Error(`${method} ${path} answered ${response.status}: ${response.text.slice(0, 500)}`);
  }
  return response;
}

/** Plain HTTP GET/POST on loopback (etcd's client port); resolves status and text. */
export function httpLocal(
  url: string,
  method = 'GET',
  body?: unknown,
  timeoutMs = 5000,
): Promise<{ status: number; text: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, timeout: timeoutMs, agent: false });
    if (payload !== undefined) request.setHeader('content-type', 'application/json');
    request.once('timeout', () => request.destroy(new Error(`${method} ${url} timed out`)));
    request.once('error', reject);
    request.once('response', (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.once('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.end(payload);
  });
}

/** A TCP port that was free on 127.0.0.1 a moment ago (callers retry on a lost race). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
