/** The public shape of a test control plane (implemented in control-plane.ts). */
import type { CommandResult } from '../exec.js';
import type { ApiResponse } from './api-client.js';

/** Options of {@link startControlPlane}. */
export interface StartControlPlaneOptions {
  /**
   * More IP addresses for the serving certificate. 127.0.0.1, ::1 and the simulated network's API address
   * (10.116.0.1, fd00:116::1) are always included.
   */
  extraServingIps?: string[];
  /** Extra kube-apiserver flags (`--name=value`), appended last so they override the defaults. */
  extraApiServerFlags?: string[];
  /**
   * Whether kube-apiserver keeps its watch cache (`--watch-cache`). Defaults to true, as in real clusters. With the
   * cache, watches from an old resourceVersion are served from memory even after etcd compaction, so
   * {@link ControlPlane.compactEtcd} restarts the API server; without it they go to etcd and fail with 410 at once.
   */
  watchCache?: boolean;
  /** How long to wait for /readyz on each (re)start. Defaults to 60 000 ms. */
  readyTimeoutMs?: number;
}

/** Options of {@link ControlPlane.kubectl}. */
export interface KubectlOptions {
  /** Written to kubectl's stdin (for `apply -f -`). */
  input?: string;
  /** Use this kubeconfig instead of the admin one. */
  kubeconfig?: string;
  /** Resolve with a non-zero exit code instead of throwing. Defaults to false. */
  allowFailure?: boolean;
}

/** A running control plane. Every method may be called from any test; `stop()` is idempotent. */
export interface ControlPlane {
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** etcd's client URL, `http://127.0.0.1:<port>` (loopback only, no auth). */
  readonly etcdUrl: string;
  /** Admin kubeconfig (user `admin` in `system:masters`); works with kubectl and @kubernetes/client-node. */
  readonly kubeconfigPath: string;
  /** Static bearer token of the admin user. */
  readonly adminToken: string;
  /** PEM of the CA that signed the serving certificate. */
  readonly caPem: string;
  /** The run's temporary folder (logs `etcd.log` and `kube-apiserver.log` are there while it runs). */
  readonly dir: string;
  /** kubectl (or `$KUBECTL`) with `--kubeconfig` set; throws on a non-zero exit unless `allowFailure`. */
  kubectl(args: string[], opts?: KubectlOptions): Promise<CommandResult>;
  /** Raw API request as the admin user; resolves with any status code. */
  request<T = unknown>(method: string, apiPath: string, body?: unknown, contentType?: string): Promise<ApiResponse<T>>;
  /**
   * A ServiceAccount token from the TokenRequest API. Creates the namespace and the ServiceAccount when missing.
   * `expirationSeconds` defaults to 3600 (the API's minimum is 600).
   */
  /**
   * A ServiceAccount token (TokenRequest), creating the namespace and ServiceAccount when missing. With
   * `boundToPodOnNode`, the token is bound to a Pod object on that node (created if missing; it never runs), as a
   * kubelet-projected token is: it then names the node (`authentication.kubernetes.io/node-name`).
   */
  mintToken(
    namespace: string,
    serviceAccount: string,
    opts?: { expirationSeconds?: number; boundToPodOnNode?: string },
  ): Promise<string>;
  /** Writes a kubeconfig for `token` (server defaults to {@link server}) and returns its path. */
  writeKubeconfig(opts: { token: string; server?: string; path?: string }): Promise<string>;
  /**
   * Stops kube-apiserver (SIGTERM) and starts it again on the same port and etcd; resolves when /readyz is ok.
   * With `expireWatches`, a write lands in etcd while no API server runs, so every watch resumed from a version seen
   * before gets 410 Gone (as in a busy cluster); without it, a watch may resume when nothing was written meanwhile.
   */
  restartApiServer(opts?: { expireWatches?: boolean }): Promise<void>;
  /**
   * Kills etcd (SIGKILL: a crash; a graceful stop waits seconds for open watch streams, and no write is lost since
   * `--unsafe-no-fsync` still hands every write to the kernel) and starts it again on the same ports and data.
   * Resolves when the API server is ready again.
   */
  restartEtcd(): Promise<void>;
  /**
   * Compacts etcd to its current revision, so that watches and lists from an older resourceVersion get 410 Gone
   * (for a watch: an ERROR event with code 410, as from a real cluster). With the watch cache on (the default), the
   * API server is then restarted, since its cache would keep serving old versions: open watches are dropped and a
   * client reconnecting with its last resourceVersion gets the 410, which is what happens in production when a
   * resourceVersion falls out of the cache's window. Right after that restart, watches of custom resources may get
   * 429 "storage is (re)initializing" for a moment, as after any API server restart. Pass `restartApiServer: false`
   * to compact etcd only. The newest resourceVersion stays valid.
   */
  compactEtcd(opts?: { restartApiServer?: boolean }): Promise<void>;
  /** Kills every process of this control plane and removes its files. */
  stop(): Promise<void>;
}
