/**
 * Helpers of the bad-input test: the target description for the generator, submitting a case, and reading back
 * whether every node reported it.
 */
import { expect } from 'vitest';
import { HUB_ADDRESS_V6, type Route } from '@opkit/testbed';
import { describeRoute, GATEWAY_A, type E2eCluster, type StaticRouteJson } from '../../e2e/support/cluster.js';
import type { HostileCase, HostileTarget } from './hostile-routes.js';

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

/** Every node reports the object as Refused or Failed, for its generation, with a message, and none counts as ready. */
export function reportedEverywhere(object: StaticRouteJson, nodes: string[]): boolean {
  for (const node of nodes) {
    const entry = object.status?.nodes?.[node];
    if (!entry || !['Refused', 'Failed'].includes(entry.state) || entry.message === '') return false;
    if (entry.observedGeneration !== object.metadata.generation) return false;
  }
  return object.status?.ready === `0/${nodes.length}`;
}

/** Every node reported the object's generation, and some state is neither Refused nor Failed. */
export function settledElsewise(object: StaticRouteJson, nodes: string[]): boolean {
  const entries = nodes.map((node) => object.status?.nodes?.[node]);
  return (
    entries.every((entry) => entry?.observedGeneration === object.metadata.generation) &&
    entries.some((entry) => !['Refused', 'Failed'].includes(entry?.state ?? ''))
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
