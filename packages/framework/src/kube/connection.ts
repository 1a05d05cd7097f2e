/**
 * The API client's connection to one API server: the resolved credentials, the agent built from them, and how both
 * heal, cheapest first, as client-go's transport does:
 * 1. Files. The token file, the CA bundle and the client certificate and key are re-read when they change: checked
 *    at most every `fileCheckMs` while requests flow, and at once after a 401 or a TLS failure. A changed CA or
 *    client certificate gets a new agent (new TLS sessions); a changed token is used by the next request.
 * 2. Re-resolution. The credential provider runs again (a helper process, maybe an exec plugin) after a 401 or a TLS
 *    failure that the files did not explain, and shortly before exec-plugin credentials expire.
 *
 * Guarantees: at most one resolution is in flight (concurrent failures share it), and resolutions after the first
 * are spaced by a {@link ResolutionLimiter}, so a revoked token costs one helper process per interval, not one per
 * request. A credential that has expired is never sent when a fresh one can be had.
 * Caveats: a request that failed while re-resolution is held back by the limiter fails with its own error; its
 * caller's retry (watch backoff, handler retry) tries again later.
 */
import type http from 'node:http';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { createAgent, type AgentTls } from './agent.js';
import { CredentialFiles } from './credential-files.js';
import type { ClusterCredentials } from './credentials.js';
import { destroyIdleSockets } from './http.js';
import { chooseProxy, redactProxyUrl, type ProxyChoice, type ProxyEnv } from './proxy.js';
import type { ResolutionLimiter } from './rate-limit.js';

/** One usable set of credentials and the agent that sends with them. */
export interface Connection {
  readonly credentials: ClusterCredentials;
  readonly base: URL;
  /** Replaced in place when the CA or client certificate files change. */
  agent: http.Agent;
  /** Replaced in place when the token file changes. */
  token: string | undefined;
  tls: AgentTls;
  readonly proxy: ProxyChoice | undefined;
  readonly files: CredentialFiles;
  /** When the files were last checked, ms since the epoch. */
  checkedAt: number;
  /** When the credentials expire (exec plugins), ms since the epoch. */
  readonly expiresAt?: number;
  /** When to resolve again ahead of {@link expiresAt}. */
  readonly refreshAt?: number;
  /** The file check in progress, shared by concurrent callers. */
  refreshing?: Promise<boolean>;
}

/** What one request was sent with: retrying helps only if the connection has changed since. */
export interface SentWith {
  agent: http.Agent;
  token: string | undefined;
  headers: Record<string, string> | undefined;
}

/** Options of {@link Connections}. */
export interface ConnectionsOptions {
  credentials: ClusterCredentials | (() => Promise<ClusterCredentials>);
  logger?: Logger;
  fileCheckMs: number;
  keepAliveDelayMs: number;
  proxyTimeoutMs: number;
  refreshMarginMs: number;
  limiter: ResolutionLimiter;
  proxyEnv: ProxyEnv;
}

/** Why credentials are resolved (for logs). */
type ResolutionReason = 'first use' | 'unauthorized' | 'tls failure' | 'expiring';

/**
 * When to refresh credentials that expire at `expiresAt`: `marginMs` ahead, but at most half their remaining
 * lifetime ahead, so that a credential living shorter than twice the margin is not refreshed again at once (pure).
 */
export function refreshTime(resolvedAt: number, expiresAt: number, marginMs: number): number {
  return expiresAt - Math.min(marginMs, Math.max(0, (expiresAt - resolvedAt) / 2));
}

/** The current connection, built lazily and healed on demand (see the module comment). */
export class Connections {
  private settled: Connection | undefined;
  private pending: Promise<Connection> | undefined;
  private lastError: unknown;
  private count = 0;
  private insecureAnnounced = false;
  private proxyAnnounced: string | undefined;

  constructor(private readonly options: ConnectionsOptions) {}

  /** Resolutions started so far (the first included). */
  /** The API server's URL as last resolved (undefined before the first request). */
  get server(): string | undefined {
    return this.settled?.credentials.server;
  }

  get resolutions(): number {
    return this.count;
  }

  /** The connection for the next request: resolved on first use, files checked, expiring credentials renewed. */
  async acquire(): Promise<Connection> {
    let conn = this.settled ?? (await this.first());
    if (!conn.files.empty && Date.now() - conn.checkedAt >= this.options.fileCheckMs) {
      await this.refreshFiles(conn, false);
    }
    if (conn.refreshAt !== undefined && Date.now() >= conn.refreshAt) {
      const renewal = this.resolve('expiring');
      // Still valid: keep sending with it while the renewal runs. Expired: it would only earn a 401, so wait.
      if (renewal && conn.expiresAt !== undefined && Date.now() >= conn.expiresAt) {
        const stale: Connection = conn;
        conn = await renewal.catch(() => stale);
      }
    }
    return conn;
  }

  /** What a request sent on `conn` goes out with. */
  sentWith(conn: Connection): SentWith {
    return { agent: conn.agent, token: conn.token, headers: conn.credentials.headers };
  }

  /**
   * After a 401 or a TLS failure of a request sent with `used`: a connection worth retrying with, or undefined when
   * nothing changed (or re-resolution is held back by the limiter).
   */
  async heal(used: SentWith, cause: 'unauthorized' | 'tls failure'): Promise<Connection | undefined> {
    const current = this.pending ? await this.pending.catch(() => this.settled) : this.settled;
    if (!current) return undefined;
    if (changedSince(current, used)) return current;
    if ((await this.refreshFiles(current, true)) && changedSince(current, used)) return current;
    const renewal = this.resolve(cause);
    if (!renewal) {
      this.options.logger?.debug(
        { cause, nextAttemptAt: new Date(this.options.limiter.nextAllowedAt()).toISOString() },
        'not resolving credentials again yet',
      );
      return undefined;
    }
    const next = await renewal.catch(() => undefined);
    return next && changedSince(next, used) ? next : undefined;
  }

  /** The API server accepted a request: credentials work, so the limiter's backoff starts over. */
  accepted(): void {
    this.options.limiter.succeeded();
  }

  /** Closes idle pooled connections. */
  close(): void {
    if (this.settled) destroyIdleSockets(this.settled.agent);
    void this.pending?.then((conn) => destroyIdleSockets(conn.agent)).catch(() => undefined);
  }

  private async first(): Promise<Connection> {
    const attempt = this.resolve('first use');
    if (attempt) return attempt;
    const retryAt = new Date(this.options.limiter.nextAllowedAt()).toISOString();
    const why = this.lastError instanceof Error ? this.lastError.message : String(this.lastError);
    throw new Error(`no Kubernetes credentials (next attempt after ${retryAt}): ${why}`, { cause: this.lastError });
  }

  /** Starts a resolution, or joins the one in flight; undefined when the limiter holds it back. */
  private resolve(reason: ResolutionReason): Promise<Connection> | undefined {
    if (this.pending) return this.pending;
    const provider = typeof this.options.credentials === 'function' ? this.options.credentials : undefined;
    // Fixed credentials are built once; only a failed build is tried again.
    if (!provider && this.settled) return undefined;
    if (this.count > 0 && !this.options.limiter.tryAcquire()) return undefined;
    this.count += 1;
    if (reason !== 'first use') this.options.logger?.info({ reason }, 'resolving Kubernetes credentials again');
    const previous = this.settled;
    const attempt = (async () => {
      const credentials = provider ? await provider() : (this.options.credentials as ClusterCredentials);
      const conn = await this.build(credentials, previous);
      this.settled = conn;
      if (previous && previous.agent !== conn.agent) destroyIdleSockets(previous.agent);
      return conn;
    })();
    this.pending = attempt;
    attempt.then(
      () => {
        this.lastError = undefined;
        if (this.pending === attempt) this.pending = undefined;
      },
      (err: unknown) => {
        this.lastError = err;
        if (this.pending === attempt) this.pending = undefined;
        this.options.logger?.warn({ err, reason }, 'cannot resolve Kubernetes credentials');
      },
    );
    return attempt;
  }

  private async build(credentials: ClusterCredentials, previous: Connection | undefined): Promise<Connection> {
    const base = new URL(credentials.server);
    const files = new CredentialFiles({
      token: credentials.tokenFile,
      ca: credentials.caFile,
      cert: credentials.certFile,
      key: credentials.keyFile,
    });
    // The helper read these files a moment ago; reading them here too gives the change check its baseline.
    await files.refresh(true, (kind, path, err) =>
      this.options.logger?.warn({ err, kind, path }, 'cannot read a credential file; using what the resolver read'),
    );
    const tlsSettings = tlsOf(credentials, files);
    const proxy = chooseProxy(base, credentials.proxyUrl, this.options.proxyEnv);
    const reuse =
      previous !== undefined &&
      previous.base.href === base.href &&
      sameTls(previous.tls, tlsSettings) &&
      previous.proxy?.url.href === proxy?.url.href;
    const agent = reuse ? previous.agent : this.agentFor(base, tlsSettings, proxy);
    this.announce(credentials, proxy);
    const now = Date.now();
    const expiry = expiryOf(credentials, now, this.options.refreshMarginMs, previous);
    return {
      credentials,
      base,
      agent,
      token: files.content('token')?.trim() || credentials.token,
      tls: tlsSettings,
      proxy,
      files,
      checkedAt: now,
      ...expiry,
    };
  }

  /** Builds an agent; throws when the TLS material does not load (bad PEM, certificate and key do not match). */
  private agentFor(base: URL, settings: AgentTls, proxy: ProxyChoice | undefined): http.Agent {
    if (base.protocol !== 'http:') tls.createSecureContext({ ca: settings.ca, cert: settings.cert, key: settings.key });
    return createAgent({
      server: base,
      tls: settings,
      proxy,
      keepAliveDelayMs: this.options.keepAliveDelayMs,
      proxyTimeoutMs: this.options.proxyTimeoutMs,
    });
  }

  /** Re-reads changed credential files into `conn`; true when the token or the agent changed. */
  private refreshFiles(conn: Connection, force: boolean): Promise<boolean> {
    if (conn.refreshing) return conn.refreshing;
    const run = (async () => {
      conn.checkedAt = Date.now();
      const changed = await conn.files.refresh(force, (kind, path, err) =>
        this.options.logger?.warn({ err, kind, path }, 'cannot read a credential file; keeping the previous content'),
      );
      let applied = false;
      const token = conn.files.content('token')?.trim();
      if (changed.has('token') && token && token !== conn.token) {
        conn.token = token;
        applied = true;
        this.options.logger?.info(
          { path: conn.credentials.tokenFile },
          'bearer token file changed; using the new token',
        );
      }
      if (changed.has('ca') || changed.has('cert') || changed.has('key')) {
        const settings = tlsOf(conn.credentials, conn.files);
        try {
          const agent = this.agentFor(conn.base, settings, conn.proxy);
          const old = conn.agent;
          conn.agent = agent;
          conn.tls = settings;
          destroyIdleSockets(old);
          applied = true;
          this.options.logger?.info(
            { changed: [...changed] },
            'TLS credential files changed; new connections use them',
          );
        } catch (err) {
          // Typically a certificate and key caught between two writes; the next change of either file retries.
          this.options.logger?.warn({ err }, 'changed TLS credential files do not load; keeping the previous ones');
        }
      }
      return applied;
    })();
    conn.refreshing = run;
    return run.finally(() => {
      if (conn.refreshing === run) conn.refreshing = undefined;
    });
  }

  /** One loud line for disabled TLS verification, one line whenever the proxy choice changes. */
  private announce(credentials: ClusterCredentials, proxy: ProxyChoice | undefined): void {
    const { logger } = this.options;
    if (credentials.insecureSkipTlsVerify && !this.insecureAnnounced) {
      this.insecureAnnounced = true;
      const message =
        'TLS verification of the API server is OFF (insecure-skip-tls-verify): anyone on the network path can read ' +
        'and change what this process sends and receives, credentials included';
      if (logger) logger.warn({ server: credentials.server }, message);
      else process.emitWarning(message, { code: 'OPKIT_INSECURE_SKIP_TLS_VERIFY' });
    }
    const shown = proxy ? `${redactProxyUrl(proxy.url)} (${proxy.source})` : 'none';
    // Said when a proxy is first used and whenever that changes; a client that never had one says nothing.
    if (shown !== this.proxyAnnounced) {
      if (proxy || this.proxyAnnounced !== undefined) {
        logger?.info({ proxy: shown, server: credentials.server }, 'API server proxy');
      }
      this.proxyAnnounced = shown;
    }
  }
}

function tlsOf(credentials: ClusterCredentials, files: CredentialFiles): AgentTls {
  return {
    ca: files.content('ca') ?? credentials.ca,
    cert: files.content('cert') ?? credentials.cert,
    key: files.content('key') ?? credentials.key,
    rejectUnauthorized: !credentials.insecureSkipTlsVerify,
    servername: credentials.tlsServerName,
  };
}

function sameTls(a: AgentTls, b: AgentTls): boolean {
  return (
    a.ca === b.ca &&
    a.cert === b.cert &&
    a.key === b.key &&
    a.rejectUnauthorized === b.rejectUnauthorized &&
    a.servername === b.servername
  );
}

function changedSince(conn: Connection, used: SentWith): boolean {
  return (
    conn.agent !== used.agent ||
    conn.token !== used.token ||
    JSON.stringify(conn.credentials.headers ?? {}) !== JSON.stringify(used.headers ?? {})
  );
}

function expiryOf(
  credentials: ClusterCredentials,
  now: number,
  marginMs: number,
  previous: Connection | undefined,
): { expiresAt?: number; refreshAt?: number } {
  const expiresAt = credentials.expiresAt ? Date.parse(credentials.expiresAt) : NaN;
  if (Number.isNaN(expiresAt)) return {};
  // A plugin that hands out its cached credential until it expires gains nothing from early renewals: wait for the
  // expiry itself then, instead of asking again at every limiter interval.
  const noLater = previous?.expiresAt !== undefined && expiresAt <= previous.expiresAt;
  return { expiresAt, refreshAt: noLater ? expiresAt : refreshTime(now, expiresAt, marginMs) };
}
