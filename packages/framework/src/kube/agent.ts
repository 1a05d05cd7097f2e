/**
 * The connection pool of the API client: a keep-alive HTTP(S) agent whose sockets all have TCP keep-alive, and that
 * connects through a CONNECT tunnel when a proxy is set.
 *
 * Why TCP keep-alive on every socket: Node's agent enables it only on idle pooled sockets, not on the one a watch
 * holds for minutes. Probes keep NAT and conntrack entries of a quiet watch alive, and a peer that lost the
 * connection (API server host rebooted, load balancer restarted) answers the first probe with a reset, which ends the
 * stream at once instead of at the watchdog.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { openTunnel, type ProxyChoice } from './proxy.js';

/** TLS settings of an {@link createAgent} agent. */
export interface AgentTls {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** Options of {@link createAgent}. */
export interface AgentOptions {
  /** The API server's URL; `http:` gets a plain agent, anything else TLS. */
  server: URL;
  tls: AgentTls;
  proxy?: ProxyChoice;
  /** Idle time before the first TCP keep-alive probe, in ms. */
  keepAliveDelayMs: number;
  /** How long a proxy may take to answer a CONNECT, in ms. */
  proxyTimeoutMs: number;
}

type ConnectCallback = (err: Error | null, stream: Duplex) => void;

/** Creates the agent for one server and one set of TLS credentials. */
export function createAgent(options: AgentOptions): http.Agent {
  return options.server.protocol === 'http:' ? new PlainAgent(options) : new TlsAgent(options);
}

class PlainAgent extends http.Agent {
  constructor(private readonly settings: AgentOptions) {
    // keepAliveMsecs: the delay Node's agent sets on sockets going back to the pool; the same as on sockets in use.
    super({ keepAlive: true, keepAliveMsecs: settings.keepAliveDelayMs });
  }

  override createConnection(options: http.ClientRequestArgs, callback?: ConnectCallback): Duplex | undefined {
    return connect(this.settings, options, callback, (args) => super.createConnection(args) as Duplex, false);
  }
}

class TlsAgent extends https.Agent {
  constructor(private readonly settings: AgentOptions) {
    super({
      keepAlive: true,
      keepAliveMsecs: settings.keepAliveDelayMs,
      ca: settings.tls.ca,
      cert: settings.tls.cert,
      key: settings.tls.key,
      rejectUnauthorized: settings.tls.rejectUnauthorized,
      servername: settings.tls.servername,
    });
  }

  override createConnection(options: http.ClientRequestArgs, callback?: ConnectCallback): Duplex | undefined {
    return connect(this.settings, options, callback, (args) => super.createConnection(args) as Duplex, true);
  }
}

/**
 * A direct connection (returned at once), or a tunnel through the proxy (handed to `callback` later, which Node's
 * agent supports for exactly this). Over a tunnel, TLS to the API server runs inside it: `direct` with `socket` set.
 */
function connect(
  settings: AgentOptions,
  options: http.ClientRequestArgs,
  callback: ConnectCallback | undefined,
  direct: (options: http.ClientRequestArgs & { socket?: Duplex }) => Duplex,
  overTls: boolean,
): Duplex | undefined {
  if (!settings.proxy || !callback) {
    const socket = direct(options);
    keepAlive(socket, settings.keepAliveDelayMs);
    return socket;
  }
  const host = options.host ?? options.hostname ?? settings.server.hostname;
  const port = Number(options.port) || Number(settings.server.port) || (overTls ? 443 : 80);
  openTunnel(
    {
      proxy: settings.proxy.url,
      host,
      port,
      keepAliveDelayMs: settings.keepAliveDelayMs,
      timeoutMs: settings.proxyTimeoutMs,
    },
    (err, tunnel) => {
      if (err || !tunnel) {
        callback(err ?? new Error('proxy tunnel failed'), undefined as unknown as Duplex);
        return;
      }
      if (!overTls) {
        callback(null, tunnel);
        return;
      }
      try {
        callback(null, direct({ ...options, socket: tunnel }));
      } catch (tlsError) {
        tunnel.destroy();
        callback(tlsError as Error, undefined as unknown as Duplex);
      }
    },
  );
  return undefined;
}

function keepAlive(socket: Duplex, delayMs: number): void {
  (socket as Partial<Socket>).setKeepAlive?.(true, delayMs);
}
