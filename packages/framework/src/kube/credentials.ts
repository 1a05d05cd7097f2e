/**
 * Credential resolution: everything @kubernetes/client-node knows about kubeconfigs, out of the operator's heap.
 *
 * Why: importing client-node costs ~75 MB of RSS (its generated API models load even for `KubeConfig`), and the
 * operator runs on every node. Kubeconfig parsing, in-cluster service-account discovery, exec and auth-provider plugins
 * are exactly what client-node is good at, so we use it for that, in a short-lived helper that answers with plain
 * strings and exits. The operator's own code never imports client-node.
 *
 * Two isolations:
 * - `process` (default): a child Node.js process. When it exits, the kernel takes back every page. Measured
 *   (bench/rss.ts), this is the only way the idle operator stays small: a `worker_threads` Worker frees its V8 heap,
 *   but the process keeps most of the pages it touched (allocator arenas, code space), +15 MB on Node 20 and +45 MB on
 *   Node 24 after one resolution.
 * - `worker`: a `worker_threads` Worker. Faster to start (no second Node.js boot, ~2x quicker) and no process spawn,
 *   for environments where that matters more than memory.
 *
 * Guarantees: the result carries PEM strings for CA/cert/key, and a bearer token if the user has one. Where they come
 * from files (in-cluster service account token and `ca.crt`, a `tokenFile` auth provider, kubeconfig
 * `certificate-authority`, `client-certificate`, `client-key`), the absolute paths are set too (`tokenFile`, `caFile`,
 * `certFile`, `keyFile`) so that the HTTP client re-reads them when they are rotated. Exec-plugin credentials carry
 * their `expirationTimestamp` (`expiresAt`), so that the client renews them before they expire. Secrets travel over a
 * pipe (or a MessagePort), never through argv or the environment.
 * Caveats: a kubeconfig `token-file` user field is read once by client-node (its path is not kept), so rotation there
 * relies on the 401 re-resolve. Auth-provider plugins (OIDC, ...) report no expiry; they are renewed after a 401.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** Plain connection credentials for one API server, as {@link resolveCredentials} returns them. */
export interface ClusterCredentials {
  /** Base URL, e.g. `https://127.0.0.1:6443` (may carry a path prefix behind proxies). */
  server: string;
  /** PEM CA bundle that signs the server certificate. Defaults to the system roots. */
  ca?: string;
  /** PEM client certificate (mutual TLS). */
  cert?: string;
  /** PEM client key (mutual TLS). */
  key?: string;
  /** Bearer token. */
  token?: string;
  /** File the bearer token is read from; re-read when it changes (service-account token rotation). */
  tokenFile?: string;
  /** Skip server certificate verification (kubeconfig `insecure-skip-tls-verify`). */
  insecureSkipTlsVerify?: boolean;
  /** SNI / certificate name to verify instead of the URL's host (kubeconfig `tls-server-name`). */
  tlsServerName?: string;
  /** Further headers to send: `Impersonate-User`, or `Authorization: Basic ...` for basic-auth users. */
  headers?: Record<string, string>;
  /** File `ca` was read from (kubeconfig `certificate-authority`, in-cluster `ca.crt`); re-read when it changes. */
  caFile?: string;
  /** File `cert` was read from (kubeconfig `client-certificate`); re-read when it changes. */
  certFile?: string;
  /** File `key` was read from (kubeconfig `client-key`); re-read when it changes. */
  keyFile?: string;
  /** HTTP(S) proxy for this cluster (kubeconfig `proxy-url`); wins over `HTTPS_PROXY` and `NO_PROXY`. */
  proxyUrl?: string;
  /** When the credentials expire (RFC 3339; exec plugins' `status.expirationTimestamp`); renewed before then. */
  expiresAt?: string;
}

/** Options for {@link resolveCredentials}. */
export interface ResolveCredentialsOptions {
  /** Kubeconfig file. Defaults to client-node's search: `$KUBECONFIG`, `~/.kube/config`, then in-cluster. */
  kubeconfigPath?: string;
  /** Context to use instead of the kubeconfig's current context. */
  context?: string;
  /**
   * Use the in-cluster service account (`KUBERNETES_SERVICE_HOST`/`_PORT`, the token, CA and namespace under
   * `/var/run/secrets/kubernetes.io/serviceaccount/`) instead of searching for a kubeconfig. `pathPrefix` is prepended
   * to that folder (for tests). Defaults to false: client-node's search finds the service account last anyway.
   */
  inCluster?: boolean | { pathPrefix: string };
  /** Where client-node runs: a child `process` (default; all memory returned) or a `worker` thread. */
  isolation?: 'process' | 'worker';
  /** Reject if resolution takes longer (exec plugins can hang). Defaults to 60 000 ms. */
  timeoutMs?: number;
}

// The resolver's source. It is kept as a string so that it runs unchanged from TypeScript sources (tests) and from
// compiled JavaScript (production) without a separate build step or file lookup. It uses only dynamic import(), so it
// works as a script or as a module (a Worker inherits --input-type=module from its process, for instance).
const resolverSource = String.raw`
async function resolveWithClientNode(workerData) {
  const { KubeConfig } = await import(workerData.clientNodeUrl);
  const kc = new KubeConfig();
  if (workerData.inCluster !== undefined) kc.loadFromCluster(workerData.inCluster);
  else if (workerData.kubeconfigPath) kc.loadFromFile(workerData.kubeconfigPath);
  else kc.loadFromDefault();
  if (workerData.context) kc.setCurrentContext(workerData.context);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster (context ' + kc.getCurrentContext() + ')');
  const user = kc.getCurrentUser();
  const opts = { headers: {} };
  try {
    // Applies CA/cert/key, token, exec and auth-provider plugins, impersonation and basic auth.
    await kc.applyToHTTPSOptions(opts);
  } catch (err) {
    // client-node refuses to build an agent for plain-http servers; the options it applied before that still stand.
    if (!String(cluster.server).startsWith('http:')) throw err;
    await kc.applyOptions(opts);
  }
  const text = (v) => (v == null ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : Array.isArray(v) ? v.map(text).join('\n') : String(v));
  const headers = {};
  let token;
  for (const [name, value] of Object.entries(opts.headers || {})) {
    if (value == null) continue;
    const str = Array.isArray(value) ? value.join(', ') : String(value);
    if (name.toLowerCase() === 'authorization' && /^bearer /i.test(str)) token = str.slice(7).trim();
    else headers[name] = str;
  }
  if (opts.auth) headers.Authorization = 'Basic ' + Buffer.from(opts.auth).toString('base64');
  let tokenFile;
  if (user && user.authProvider && user.authProvider.config && user.authProvider.config.tokenFile) tokenFile = user.authProvider.config.tokenFile;
  // The exec plugin's answer, as client-node's ExecAuth cached it: its expiry, and whether it replaced the kubeconfig's
  // client certificate (then the certificate files are not where the certificate came from).
  const execAuth = (kc.authenticators || []).find((a) => a && a.tokenCache && typeof a.tokenCache === 'object');
  const execStatus = (user && execAuth && execAuth.tokenCache[user.name] && execAuth.tokenCache[user.name].status) || undefined;
  const execCert = Boolean(execStatus && execStatus.clientCertificateData);
  return {
    server: String(cluster.server).replace(/\/+$/, ''),
    ca: text(opts.ca), cert: text(opts.cert), key: text(opts.key), token, tokenFile,
    insecureSkipTlsVerify: cluster.skipTLSVerify === true || opts.rejectUnauthorized === false || undefined,
    tlsServerName: cluster.tlsServerName || undefined,
    headers: Object.keys(headers).length ? headers : undefined,
    // client-node prefers a file to inline data when a kubeconfig has both.
    caFile: cluster.caFile || undefined,
    certFile: (!execCert && user && user.certFile) || undefined,
    keyFile: (!execCert && user && user.keyFile) || undefined,
    proxyUrl: cluster.proxyUrl || undefined,
    expiresAt: (execStatus && execStatus.expirationTimestamp) || undefined,
  };
}
`;

/** @internal Worker-thread wrapper of the resolver; exported for tests only. */
export const credentialWorkerSource = String.raw`
import('node:worker_threads').then(async ({ parentPort, workerData }) => {
  try {
    parentPort.postMessage({ ok: true, credentials: await resolveWithClientNode(workerData) });
  } catch (err) {
    parentPort.postMessage({ ok: false, message: String((err && err.message) || err) });
  }
});
${resolverSource}`;

// Child-process wrapper: the request comes in argv (paths only), the answer goes out on fd 3, so that nothing client-node
// or a plugin prints on stdout can be mistaken for it.
const credentialProcessSource = String.raw`
const { writeSync } = await import('node:fs');
let reply;
try {
  reply = { ok: true, credentials: await resolveWithClientNode(JSON.parse(process.argv[1])) };
} catch (err) {
  reply = { ok: false, message: String((err && err.message) || err) };
}
writeSync(3, JSON.stringify(reply));
process.exit(0);
${resolverSource}`;

type ResolverReply = { ok: true; credentials: ClusterCredentials } | { ok: false; message: string };

interface ResolverRequest {
  clientNodeUrl: string;
  kubeconfigPath?: string;
  context?: string;
  inCluster?: string;
}

/**
 * Resolves the credentials for the API server with @kubernetes/client-node, in a child process (or worker thread) that
 * exits afterwards.
 *
 * @example
 * ```ts
 * const credentials = await resolveCredentials({ kubeconfigPath: '/tmp/kubeconfig' });
 * // Re-resolved on 401 and TLS failures, and before exec-plugin credentials expire:
 * const api = createKubeApi({ credentials: () => resolveCredentials() });
 * ```
 * @throws Error naming the cause (missing kubeconfig, unknown context, failing exec plugin with its stderr, timeout).
 */
export function resolveCredentials(opts: ResolveCredentialsOptions = {}): Promise<ClusterCredentials> {
  const request: ResolverRequest = {
    // Resolve (not import) client-node here, relative to this package, so the helper finds the same copy wherever the
    // process was started from.
    clientNodeUrl: pathToFileURL(createRequire(import.meta.url).resolve('@kubernetes/client-node')).href,
    kubeconfigPath: opts.kubeconfigPath,
    context: opts.context,
    inCluster: opts.inCluster ? (opts.inCluster === true ? '' : opts.inCluster.pathPrefix) : undefined,
  };
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const run = opts.isolation === 'worker' ? runInWorker : runInProcess;
  return run(request, timeoutMs).then((reply) => {
    if (!reply.ok) throw new Error(`cannot resolve Kubernetes credentials: ${reply.message}`);
    return dropUndefined(reply.credentials);
  });
}

/** Keeps the tail of a helper's stderr: exec plugins explain their failures there. */
function stderrCollector(): { add: (chunk: string) => void; explain: (message: string) => string } {
  let tail = '';
  return {
    add: (chunk) => {
      tail = (tail + chunk).slice(-2000);
    },
    explain: (message) => (tail.trim() ? `${message}; stderr: ${tail.trim()}` : message),
  };
}

function runInProcess(request: ResolverRequest, timeoutMs: number): Promise<ResolverReply> {
  // No inherited execArgv: the operator's own flags (loaders, inspector, heap limits) are not the helper's business.
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', credentialProcessSource, JSON.stringify(request)],
    {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    },
  );
  const stderr = stderrCollector();
  child.stderr?.setEncoding('utf8').on('data', stderr.add);
  let output = '';
  const answer = child.stdio[3] as NodeJS.ReadableStream;
  answer.setEncoding('utf8');
  answer.on('data', (chunk: string) => (output += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      try {
        const reply = JSON.parse(output) as ResolverReply;
        resolve(reply.ok ? reply : { ok: false, message: stderr.explain(reply.message) });
      } catch {
        const why =
          signal === 'SIGTERM' ? `timed out after ${timeoutMs} ms` : `exited with ${signal ?? `code ${code}`}`;
        reject(new Error(stderr.explain(`credential helper process ${why} before answering`)));
      }
    });
  });
}

function runInWorker(request: ResolverRequest, timeoutMs: number): Promise<ResolverReply> {
  const worker = new Worker(credentialWorkerSource, {
    eval: true,
    workerData: request,
    // Keep the worker's output from mixing into the operator's JSON log stream.
    stdout: true,
    stderr: true,
  });
  const stderr = stderrCollector();
  worker.stdout.resume();
  worker.stderr.setEncoding('utf8').on('data', stderr.add);
  return new Promise<ResolverReply>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
      // Do not wait for a plugin's child process to linger: the answer is in.
      void worker.terminate();
    };
    const timer = setTimeout(
      () => finish(() => reject(new Error(`credential worker timed out after ${timeoutMs} ms`))),
      timeoutMs,
    );
    timer.unref();
    worker.once('message', (reply: ResolverReply) =>
      finish(() => resolve(reply.ok ? reply : { ok: false, message: stderr.explain(reply.message) })),
    );
    worker.once('error', (err) => finish(() => reject(err)));
    worker.once('exit', (code) =>
      finish(() => reject(new Error(stderr.explain(`credential worker exited with code ${code} before answering`)))),
    );
  });
}

function dropUndefined(credentials: ClusterCredentials): ClusterCredentials {
  return Object.fromEntries(
    Object.entries(credentials).filter(([, value]) => value !== undefined),
  ) as unknown as ClusterCredentials;
}
