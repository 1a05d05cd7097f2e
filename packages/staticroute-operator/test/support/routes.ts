/**
 * Builders of StaticRoutes and of a node's view for the pure logic's unit tests (desired state, claims).
 */
import type { NodeView } from '../../src/logic/desired.js';
import { parseAddress } from '../../src/logic/ip.js';
import type { SafetyPolicy } from '../../src/logic/safety.js';
import type { StaticRouteObject } from '../../src/logic/spec.js';

/** A node at 10.116.0.2/20, no other protection, no default route. */
export const TEST_POLICY: SafetyPolicy = {
  nodeAddresses: [{ ...(parseAddress('10.116.0.2') as { family: 4; address: bigint }), prefixLength: 20 }],
  apiServerAddresses: [],
  protectedCidrs: [],
  allowDefaultRoute: false,
};

/** The node the tests plan for. */
export const TEST_NODE: NodeView = { name: 'node-a', labels: { zone: 'fra1' } };

/**
 * A StaticRoute of generation 1 created at second `createdAtSecond` of 2025-01-01 (the creation time decides who
 * wins a contested destination), with `metadata` overrides.
 */
export function staticRouteAt(
  name: string,
  createdAtSecond: number,
  spec: Record<string, unknown>,
  metadata: Partial<StaticRouteObject['metadata']> = {},
): StaticRouteObject {
  return {
    metadata: {
      name,
      generation: 1,
      creationTimestamp: new Date(Date.UTC(2025, 0, 1, 0, 0, createdAtSecond)).toISOString(),
      ...metadata,
    },
    spec,
  };
}
