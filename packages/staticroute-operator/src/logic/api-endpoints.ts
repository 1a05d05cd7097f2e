/**
 * The API server's real endpoints, from the `default/kubernetes` EndpointSlices.
 *
 * Why: node traffic to the API server's ClusterIP is rewritten (kube-proxy's DNAT, or Cilium's socket load balancer,
 * which never puts the ClusterIP on the wire) to the real endpoint addresses. A route capturing one of those (e.g. a
 * managed cluster's public endpoint under `128.0.0.0/1` via a gateway that does not forward) cuts the node off the API
 * server, and with it from the object that would undo the route. Protecting the ClusterIP alone protects nothing.
 */
import { hostPrefix, parseAddress, type Prefix } from './ip.js';

/** Label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Namespace and Service name of the API server's endpoints. */
export const API_SERVER_SERVICE = { namespace: 'default', name: 'kubernetes' };

/** The parts of a discovery.k8s.io/v1 EndpointSlice read here. */
export interface EndpointSliceLike {
  addressType?: string;
  endpoints?: Array<{ addresses?: string[] } | null> | null;
}

/**
 * Every IPv4/IPv6 address of the slices, as host prefixes, deduplicated and sorted (FQDN slices and malformed
 * addresses are skipped). Not-ready endpoints count too: they can become ready at any time.
 */
export function endpointAddresses(slices: Iterable<EndpointSliceLike>): Prefix[] {
  const seen = new Map<string, Prefix>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    for (const endpoint of slice.endpoints ?? []) {
      for (const text of endpoint?.addresses ?? []) {
        const parsed = parseAddress(text);
        if (!parsed) continue;
        const key = `${parsed.family}/${parsed.address}`;
        if (!seen.has(key)) seen.set(key, hostPrefix(parsed.family, parsed.address));
      }
    }
  }
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, prefix]) => prefix);
}
