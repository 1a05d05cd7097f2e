/**
 * Proxies between the operator and the API server, as client-go uses them: the kubeconfig's `proxy-url` for that
 * cluster, else `HTTPS_PROXY` (`HTTP_PROXY` for a plain-http server) minus the hosts in `NO_PROXY`.
 *
 * Requests go through an HTTP CONNECT tunnel: the proxy sees only the host and port, TLS runs end to end inside the
 * tunnel, and the keep-alive pool keeps tunnels open like any other connection.
 *
 * Caveats: `socks5://` proxies are not supported (rejected with a clear error). Like Go, a loopback or `localhost`
 * server never goes through a proxy from the environment; an explicit `proxy-url` applies to every server.
 */
import net from 'node:net';
import tls from 'node:tls';

/** Where a proxy setting came from, for logs. */
export type ProxySource = 'kubeconfig' | 'HTTPS_PROXY' | 'HTTP_PROXY';

/** The proxy to use for one API server. */
export interface ProxyChoice {
  url: URL;
  source: ProxySource;
}

/** Environment variables the proxy choice reads; `process.env` by default. */
export type ProxyEnv = Readonly<Record<string, string | undefined>>;

/**
 * Chooses the proxy for `server` (pure).
 *
 * @param proxyUrl - The kubeconfig's `proxy-url` for this cluster; wins over the environment, NO_PROXY included.
 * @throws Error for a proxy URL that is not `http://` or `https://`.
 */
export function chooseProxy(server: URL, proxyUrl: string | undefined, env: ProxyEnv): ProxyChoice | undefined {
  if (proxyUrl) return { url: parseProxyUrl(proxyUrl), source: 'kubeconfig' };
  const secure = server.protocol === 'https:';
  // Upper case first, as Go's httpproxy reads them.
  const value = secure ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!value) return undefined;
  const port = server.port || (secure ? '443' : '80');
  if (!proxyAllowed(server.hostname, port, env.NO_PROXY ?? env.no_proxy ?? '')) return undefined;
  return { url: parseProxyUrl(value), source: secure ? 'HTTPS_PROXY' : 'HTTP_PROXY' };
}

/**
 * Whether a host may go through a proxy from the environment, under Go's `NO_PROXY` rules (pure): entries are separated
 * by commas; `*` excludes everything; an IP address or CIDR range excludes matching addresses; a domain excludes itself
 * and its subdomains, `.domain` (or `*.domain`) only the subdomains; any entry may name a port (`host:port`). Loopback
 * addresses and `localhost` never go through an environment proxy.
 */
export function proxyAllowed(hostname: string, port: string, noProxy: string): boolean {
  const host = unbracket(hostname).toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || isLoopback(host)) return false;
  const hostIsIp = net.isIP(host) !== 0;
  for (const raw of noProxy.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return false;
    if (entry.includes('/')) {
      if (hostIsIp && inCidr(host, entry)) return false;
      continue;
    }
    const { name, entryPort } = splitEntry(entry);
    if (!name || (entryPort !== undefined && entryPort !== port)) continue;
    if (net.isIP(name) !== 0) {
      if (hostIsIp && sameAddress(name, host)) return false;
      continue;
    }
    const suffix = name.startsWith('*.') ? name.slice(1) : name;
    if (suffix.startsWith('.') ? host.endsWith(suffix) : host === suffix || host.endsWith(`.${suffix}`)) return false;
  }
  return true;
}

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address (several colons, no port). */
function splitEntry(entry: string): { name: string; entryPort?: string } {
  const bracketed = /^\[([^\]]*)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bracketed[1]!, entryPort: bracketed[2] };
  const colon = entry.indexOf(':');
  if (colon >= 0 && colon === entry.lastIndexOf(':'))
    return { name: entry.slice(0, colon), entryPort: entry.slice(colon + 1) };
  return { name: entry };
}

function sameAddress(a: string, b: string): boolean {
  const family = net.isIP(a);
  if (family !== net.isIP(b)) return false;
  const list = new net.BlockList();
  list.addAddress(a, family === 4 ? 'ipv4' : 'ipv6');
  return list.check(b, family === 4 ? 'ipv4' : 'ipv6');
}

/** A proxy URL with its password hidden, for logs and error messages. */
export function redactProxyUrl(url: URL): string {
  const shown = new URL(url.href);
  if (shown.password) shown.password = '***';
  return `${shown.protocol}//${shown.username ? `${shown.username}${shown.password ? ':***' : ''}@` : ''}${shown.host}`;
}

function parseProxyUrl(value: string): URL {
  // Go takes a bare host:port as an http:// proxy.
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`unsupported proxy scheme ${url.protocol} (only http:// and https:// proxies are supported)`);
  }
  return url;
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function isLoopback(host: string): boolean {
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || /^::ffff:127\./.test(host);
  return false;
}

function inCidr(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const prefix = Number(bits);
  if (!base || !Number.isInteger(prefix)) return false;
  const family = net.isIP(base);
  if (family === 0 || family !== net.isIP(address)) return false;
  try {
    const list = new net.BlockList();
    list.addSubnet(base, prefix, family === 4 ? 'ipv4' : 'ipv6');
    return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  } catch {
    return false;
  }
}

/** Options of {@link openTunnel}. */
export interface TunnelOptions {
  proxy: URL;
  /** The API server's host and port, as the CONNECT request names them. */
  host: string;
  port: number;
  /** TCP keep-alive delay for the socket to the proxy, in ms. */
  keepAliveDelayMs: number;
  /** Give up when the proxy has not answered the CONNECT within this, in ms. */
  timeoutMs: number;
}

/**
 * Opens an HTTP CONNECT tunnel through `proxy` to `host:port`. Calls back with a socket that carries bytes to the
 * API server (TLS to the server is the caller's), or with an error that names the proxy (password hidden).
 */
export function openTunnel(options: TunnelOptions, callback: (err: Error | null, socket?: net.Socket) => void): void {
  const { proxy, host, port } = options;
  const proxyPort = Number(proxy.port) || (proxy.protocol === 'https:' ? 443 : 80);
  const socket: net.Socket =
    proxy.protocol === 'https:'
      ? tls.connect({
          host: proxy.hostname,
          port: proxyPort,
          servername: net.isIP(proxy.hostname) ? '' : proxy.hostname,
        })
      : net.connect({ host: unbracket(proxy.hostname), port: proxyPort });
  socket.setKeepAlive(true, options.keepAliveDelayMs);
  const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
  let done = false;
  let buffered = Buffer.alloc(0);
  const finish = (err: Error | null): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('close', onClose);
    if (err) {
      socket.destroy();
      callback(err);
      return;
    }
    callback(null, socket);
  };
  const fail = (why: string): void =>
    finish(new Error(`proxy ${redactProxyUrl(proxy)}: CONNECT ${authority} failed: ${why}`));
  const onError = (err: Error): void => fail(err.message);
  const onClose = (): void => fail('connection closed before the proxy answered');
  const onData = (chunk: Buffer): void => {
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buffered.length > 16_384) fail('proxy answer too long');
      return;
    }
    const statusLine = buffered.subarray(0, buffered.indexOf('\r\n')).toString('latin1');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
    if (status !== '200') {
      fail(`proxy answered ${JSON.stringify(statusLine)}`);
      return;
    }
    // The server speaks only after our TLS hello, so nothing should follow the headers; keep it if something does.
    const rest = buffered.subarray(end + 4);
    if (rest.length > 0) socket.unshift(rest);
    finish(null);
  };
  const timer = setTimeout(() => fail(`no answer within ${options.timeoutMs} ms`), options.timeoutMs);
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', onClose);
  socket.once(proxy.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
    const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
    if (proxy.username) {
      const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      lines.push(`Proxy-Authorization: Basic ${Buffer.from(credentials).toString('base64')}`);
    }
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}
