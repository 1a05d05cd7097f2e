/**
 * Routes as the kernel reports them, in one structured shape: from `ip -j -d -N route show` (tables) and from
 * `ip -o -d -N monitor route` (notifications). Numbers stay numbers (protocol, table), so a test can compare them
 * with what an operator wrote without iproute2's name tables in between.
 */

/** One route. `dst` is always a CIDR: `default` becomes 0.0.0.0/0 or ::/0, a host route gets /32 or /128. */
export interface Route {
  dst: string;
  family: 4 | 6;
  /** Route type: `unicast`, `local`, `broadcast`, `multicast`, `blackhole`, `unreachable`, `prohibit`, `throw`, ... */
  type: string;
  gateway?: string;
  /** Present for multipath routes (then `gateway` and `dev` are absent). */
  nexthops?: { gateway: string; dev?: string; weight?: number }[];
  dev?: string;
  /** Numeric protocol (2 kernel, 3 boot, 4 static, ...). */
  protocol: number;
  /** Numeric table (254 main, 255 local). */
  table: number;
  /** `global`, `link`, `host`, `site`, `nowhere` or the number. */
  scope?: string;
  metric?: number;
  prefsrc?: string;
}

const typeNames: Record<number, string> = {
  0: 'unspec', 1: 'unicast', 2: 'local', 3: 'broadcast', 4: 'anycast', 5: 'multicast',
  6: 'blackhole', 7: 'unreachable', 8: 'prohibit', 9: 'throw', 10: 'nat', 11: 'xresolve',
}; // prettier-ignore
const scopeNames: Record<number, string> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };

function familyOf(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

/** Turns `default`, `10.1.2.3` or `10.1.0.0/24` into a CIDR of the given family. */
export function normalizeDestination(dst: string, family: 4 | 6): string {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  if (dst.includes('/')) return dst;
  return `${dst}/${family === 4 ? 32 : 128}`;
}

function nameOr(names: Record<number, string>, value: string | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  return Number.isNaN(number) ? String(value) : (names[number] ?? String(value));
}

interface IpJsonRoute {
  type?: string;
  dst: string;
  gateway?: string;
  via?: { family?: string; host?: string };
  dev?: string;
  table?: string | number;
  protocol?: string | number;
  scope?: string | number;
  metric?: number;
  prefsrc?: string;
  nexthops?: { gateway?: string; via?: { host?: string }; dev?: string; weight?: number }[];
}

/**
 * Parses the output of `ip -j -d -N route show ...` for one family. iproute2 leaves out the table when the command
 * named one table: `requestedTable` fills it in (else a missing table means main, 254).
 */
export function parseIpRouteJson(json: string, family: 4 | 6, requestedTable?: number): Route[] {
  const entries = JSON.parse(json.trim() || '[]') as IpJsonRoute[];
  return entries.map((entry) => {
    const route: Route = {
      dst: normalizeDestination(entry.dst, family),
      family,
      type: nameOr(typeNames, entry.type ?? 1) ?? 'unicast',
      protocol: Number(entry.protocol ?? 0),
      table: Number(entry.table ?? requestedTable ?? 254),
    };
    const gateway = entry.gateway ?? entry.via?.host;
    if (gateway) route.gateway = gateway;
    if (entry.dev) route.dev = entry.dev;
    const scope = nameOr(scopeNames, entry.scope);
    if (scope) route.scope = scope;
    if (entry.metric !== undefined) route.metric = entry.metric;
    if (entry.prefsrc) route.prefsrc = entry.prefsrc;
    if (entry.nexthops) {
      route.nexthops = entry.nexthops.map((hop) => ({
        gateway: hop.gateway ?? hop.via?.host ?? '',
        ...(hop.dev ? { dev: hop.dev } : {}),
        ...(hop.weight !== undefined ? { weight: hop.weight } : {}),
      }));
    }
    return route;
  });
}

/** One notification of `ip monitor route`. */
export interface RouteEvent {
  kind: 'add' | 'delete';
  route: Route;
  /** `Date.now()` when the test bed read the line. */
  at: number;
}

/**
 * Parses one line of `ip -o -d -N monitor route`, e.g.
 * `Deleted 1 10.6.0.0/24 via 10.1.0.2 dev va table 7 proto 77 scope 0` or a multipath line whose nexthops follow
 * `\` separators. Returns undefined for lines that are not route notifications.
 */
export function parseMonitorLine(line: string, at: number): RouteEvent | undefined {
  const [head = '', ...hopParts] = line.split('\\').map((part) => part.trim());
  const words = head.split(/\s+/).filter(Boolean);
  let kind: 'add' | 'delete' = 'add';
  if (words[0] === 'Deleted') {
    kind = 'delete';
    words.shift();
  }
  let type = 'unicast';
  if (words[0] !== undefined && /^\d+$/.test(words[0])) type = nameOr(typeNames, words.shift()) ?? 'unicast';
  else if (words[0] !== undefined && Object.values(typeNames).includes(words[0])) type = words.shift() ?? type;
  const dst = words.shift();
  if (!dst || !/^(default|[0-9a-f.:]+(\/\d+)?)$/i.test(dst)) return undefined;
  const fields = readFields(words);
  // A default route names no address; its gateway does, and only IPv6 routes carry a `pref`.
  const family: 4 | 6 =
    dst !== 'default' ? familyOf(dst) : fields.gateway ? familyOf(fields.gateway) : fields.pref ? 6 : 4;
  const route: Route = {
    dst: normalizeDestination(dst, family),
    family,
    type,
    protocol: Number(fields.proto ?? 0),
    table: Number(fields.table ?? 254),
  };
  if (fields.gateway) route.gateway = fields.gateway;
  if (fields.dev) route.dev = fields.dev;
  const scope = nameOr(scopeNames, fields.scope);
  if (scope) route.scope = scope;
  if (fields.metric !== undefined) route.metric = Number(fields.metric);
  if (fields.src) route.prefsrc = fields.src;
  const hops = hopParts.filter((part) => part.startsWith('nexthop'));
  if (hops.length > 0) {
    route.nexthops = hops.map((part) => {
      const hop = readFields(part.split(/\s+/).slice(1));
      return {
        gateway: hop.gateway ?? '',
        ...(hop.dev ? { dev: hop.dev } : {}),
        ...(hop.weight !== undefined ? { weight: Number(hop.weight) } : {}),
      };
    });
  }
  return { kind, route, at };
}

/** Reads `key value` pairs of an iproute2 route line; `via [inet|inet6] ADDR` becomes `gateway`. */
function readFields(words: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let index = 0; index < words.length; index += 1) {
    const word = words[index] ?? '';
    if (word === 'via') {
      let next = words[index + 1] ?? '';
      if (next === 'inet' || next === 'inet6') {
        index += 1;
        next = words[index + 1] ?? '';
      }
      fields.gateway = next;
      index += 1;
    } else if (['dev', 'table', 'proto', 'scope', 'metric', 'src', 'weight', 'pref'].includes(word)) {
      fields[word] = words[index + 1] ?? '';
      index += 1;
    }
  }
  return fields;
}
