/**
 * Operator configuration from environment variables (the DaemonSet sets them). Pure: takes the environment as a
 * record so that it is testable and never reads `process.env` itself.
 */
import { parseAddress, parseCidrList, parsePrefix, hostPrefix, type Prefix } from './ip.js';

/**
 * Default `rtm_protocol` for our routes. 201 is not listed in iproute2's `/etc/iproute2/rt_protos` and not used by
 * the common routing daemons (zebra 11, bird 12, babel 42, bgp/isis/ospf/rip 186-189, eigrp 192, keepalived 18).
 * `ip route show proto 201` lists the operator's routes.
 */
export const DEFAULT_ROUTE_PROTOCOL = 201;
/** Default interval of the full reconcile that runs besides the route monitor. */
export const DEFAULT_RECONCILE_INTERVAL_SECONDS = 60;
/** Default heartbeat of the node report (see {@link OperatorConfig.reportHeartbeatMs}). */
export const DEFAULT_REPORT_HEARTBEAT_SECONDS = 60;
/** Default port of `/healthz`, `/readyz` and `/metrics` (the pod uses the host network, so it is a node port). */
export const DEFAULT_PROBE_PORT = 9860;

export interface OperatorConfig {
  nodeName: string;
  routeProtocol: number;
  allowDefaultRoute: boolean;
  protectedCidrs: Prefix[];
  /** API server endpoint addresses to protect, besides the one the operator connects to. */
  apiServerAddresses: Prefix[];
  /**
   * ALLOW_COVERING_CIDRS: protected addresses and ranges inside these may be captured by any StaticRoute (see
   * SafetyPolicy.allowCoveringCidrs). Empty by default.
   */
  allowCoveringCidrs: Prefix[];
  reconcileIntervalMs: number;
  /**
   * Heartbeat of the node's report: at least one write this often, so the aggregator can tell a live agent from a
   * silent one (it counts an agent silent after SILENT_AGENT_SECONDS, 3 heartbeats by default). 60 s by default.
   */
  reportHeartbeatMs: number;
  probePort: number;
  logLevel: string;
  /**
   * GATEWAY_HEALTH_CHECK: whether StaticRoutes without `spec.gatewayHealth.check` have their gateways health-checked
   * (`Enabled`, the default) or not (`Disabled`).
   */
  gatewayHealthCheck: boolean;
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[,\s]+/)
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function integer(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  if (!/^\d+$/.test(value.trim())) throw new Error(`${name} must be an integer, got ${JSON.stringify(value)}`);
  const parsed = Number(value);
  if (parsed < min || parsed > max) throw new Error(`${name} must be between ${min} and ${max}, got ${parsed}`);
  return parsed;
}

function boolean(name: string, value: string | undefined): boolean {
  const text = (value ?? '').trim().toLowerCase();
  if (text === '' || text === 'false' || text === '0' || text === 'no') return false;
  if (text === 'true' || text === '1' || text === 'yes') return true;
  throw new Error(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

/** GATEWAY_HEALTH_CHECK: `Enabled` (the default when unset) or `Disabled`, in any case. */
function gatewayHealthCheck(value: string | undefined): boolean {
  const text = (value ?? '').trim().toLowerCase();
  if (text === '' || text === 'enabled') return true;
  if (text === 'disabled') return false;
  throw new Error(`GATEWAY_HEALTH_CHECK must be Enabled or Disabled, got ${JSON.stringify(value)}`);
}

/** Reads the configuration; throws with a message naming the variable when one is malformed. */
export function readConfig(env: Readonly<Record<string, string | undefined>>): OperatorConfig {
  const nodeName = (env.NODE_NAME ?? '').trim();
  if (nodeName === '') throw new Error('NODE_NAME must be set (the DaemonSet sets it from spec.nodeName)');
  const protectedCidrs = list(env.PROTECTED_CIDRS).map((text) => {
    const parsed = parsePrefix(text);
    if (!parsed) throw new Error(`PROTECTED_CIDRS: ${JSON.stringify(text)} is not an IP address or CIDR`);
    return parsed.prefix;
  });
  const apiServerAddresses = [...list(env.API_SERVER_ADDRESSES), ...list(env.KUBERNETES_SERVICE_HOST)].map((text) => {
    const parsed = parseAddress(text);
    if (!parsed) throw new Error(`API_SERVER_ADDRESSES: ${JSON.stringify(text)} is not an IP address`);
    return hostPrefix(parsed.family, parsed.address);
  });
  // Strict (no host bits): an allowance lifts a protection, so it must mean exactly what was written.
  const allowCovering = parseCidrList(env.ALLOW_COVERING_CIDRS ?? '');
  if (allowCovering.problems.length > 0) throw new Error(`ALLOW_COVERING_CIDRS: ${allowCovering.problems.join('; ')}`);
  return {
    nodeName,
    // 0-4 are the kernel's own (unspec, redirect, kernel, boot, static); 4 is also what the seed used.
    routeProtocol: integer('ROUTE_PROTOCOL', env.ROUTE_PROTOCOL, DEFAULT_ROUTE_PROTOCOL, 5, 255),
    allowDefaultRoute: boolean('ALLOW_DEFAULT_ROUTE', env.ALLOW_DEFAULT_ROUTE),
    protectedCidrs,
    apiServerAddresses,
    allowCoveringCidrs: allowCovering.prefixes,
    reconcileIntervalMs:
      integer(
        'RECONCILE_INTERVAL_SECONDS',
        env.RECONCILE_INTERVAL_SECONDS,
        DEFAULT_RECONCILE_INTERVAL_SECONDS,
        1,
        86_400,
      ) * 1000,
    reportHeartbeatMs:
      integer('REPORT_HEARTBEAT_SECONDS', env.REPORT_HEARTBEAT_SECONDS, DEFAULT_REPORT_HEARTBEAT_SECONDS, 1, 3_600) *
      1000,
    probePort: integer('PROBE_PORT', env.PROBE_PORT, DEFAULT_PROBE_PORT, 1, 65_535),
    logLevel: (env.LOG_LEVEL ?? 'info').trim() || 'info',
    gatewayHealthCheck: gatewayHealthCheck(env.GATEWAY_HEALTH_CHECK),
  };
}
