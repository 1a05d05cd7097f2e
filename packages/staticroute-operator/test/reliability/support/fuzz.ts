/**
 * Helpers of the bad-input test: the target description for the generator, submitting a case, and reading back
 * whether every node reported it.
 */
import { expect } from 'vitest';
import { HUB_ADDRESS_V6, type Route } from '@opkit/testbed';
import {
  describeRoute,
  GATEWAY_A,
  type E2eCluster,
  type NodeReportJson,
  type StaticRouteJson,
} from '../../e2e/support/cluster.js';
import type { HostileCase, HostileTarget } from './hostile-routes.js';
import { entryIn, entryIsCurrent } from './reports.js';

export const STATIC_ROUTES_PATH = '/apis/networking.digitalocean.com/v1/staticroutes';
/** The server-side strictness kubectl uses by default (unknown fields are errors, not silently dropped). */
const CREATE = `${STATIC_ROUTES_PATH}?fieldValidation=Strict`;
const BASE = STATIC_ROUTES_PATH;

/** What the generator needs to know about `cluster`. */
export function targetOf(cluster: E2eCluster): HostileTarget {
  const gateway = cluster.network.gateways.find((host) => host.address === GATEWAY_A)!;
  return {
    gatewayV4: GATEWAY_A,
    gatewayV6: gateway.addressV6,
    nodeSubnetV4: cluster.network.subnet,
    nodeSubnetV6: cluster.network.subnetV6,
    nodeAddresses: cluster.nodes.flatMap((node) => [node.address, node.addressV6]),
    nodeNames: cluster.nodes.map((node) => node.name),
    apiServerAddress: new URL(cluster.network.apiServerUrl).hostname,
    apiServerAddressV6: HUB_ADDRESS_V6,
  };
}

/** A route as a comparable line: table, type, destination, protocol, next hops. */
export function routeLine(route: Route): string {
  return `${route.table ?? '-'} ${route.type ?? 'unicast'} ${describeRoute(route)} proto ${route.protocol ?? '-'}`;
}

/** What admission said about one hostile case. */
export interface Outcome {
  item: HostileCase;
  admitted: boolean;
  status: number;
  message: string;
}

const NOT_APPLIED = ['Refused', 'Failed'];

/**
 * Every node's report says Refused or Failed for the object's uid and generation, with a message; and the aggregator's
 * summary agrees: READY 0/N for that generation, Ready False for that reason, every node counted in `notReady`, and no
 * entry of the previous layout (`status.nodes`, e.g. forged by a user) left.
 */
export function reportedEverywhere(
  object: StaticRouteJson,
  reports: ReadonlyMap<string, NodeReportJson>,
  nodes: string[],
): boolean {
  const { name } = object.metadata;
  for (const node of nodes) {
    const entry = entryIn(reports, node, name);
    if (!entryIsCurrent(entry, object) || !NOT_APPLIED.includes(entry.state) || !entry.message) return false;
  }
  const status = object.status;
  const ready = status?.conditions?.find((condition) => condition.type === 'Ready');
  const counted = (status?.notReady ?? []).reduce((sum, group) => sum + group.count, 0);
  return (
    status?.ready === `0/${nodes.length}` &&
    status.observedGeneration === object.metadata.generation &&
    ready?.status === 'False' &&
    NOT_APPLIED.includes(ready.reason) &&
    counted === nodes.length &&
    !('nodes' in status)
  );
}

/** Every node reported the object's generation, and some state is neither Refused nor Failed. */
export function settledElsewise(
  object: StaticRouteJson,
  reports: ReadonlyMap<string, NodeReportJson>,
  nodes: string[],
): boolean {
  const entries = nodes.map((node) => entryIn(reports, node, object.metadata.name));
  return (
    entries.every((entry) => entryIsCurrent(entry, object)) &&
    entries.some((entry) => !NOT_APPLIED.includes(entry?.state ?? ''))
  );
}

/** Creates the object (as kubectl would: strict field validation), then forges its status when the case says so. */
export async function submit(cluster: E2eCluster, item: HostileCase): Promise<Outcome> {
  const response = await cluster.controlPlane.request<{ message?: string }>('POST', CREATE, item.manifest);
  const message =
    typeof response.body === 'object' && response.body ? (response.body.message ?? response.text) : response.text;
  if (response.status === 201 && item.userStatus) {
    const forged = await cluster.controlPlane.request('PATCH', `${BASE}/${item.name}/status`, {
      status: item.userStatus,
    });
    expect(forged.status, `forging status of ${item.name}: ${forged.text}`).toBe(200);
  }
  return { item, admitted: response.status === 201, status: response.status, message };
}
