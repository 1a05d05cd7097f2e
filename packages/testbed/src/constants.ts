/**
 * Addresses of the simulated network. Every run has its own hub namespace, so every run can use the same ones
 * without colliding, and the control plane's serving certificate can name the in-network API address up front.
 */

/** The VPC every node and gateway is attached to. */
export const VPC_SUBNET_V4 = '10.116.0.0/20';
/** IPv6 ULA prefix on the same bridge, for IPv6 route tests. */
export const VPC_SUBNET_V6 = 'fd00:116::/64';
/** The hub's own address on the VPC bridge: where nodes reach the API server relay. */
export const HUB_ADDRESS_V4 = '10.116.0.1';
export const HUB_ADDRESS_V6 = 'fd00:116::1';
/** Port of the API server relay inside the network. */
export const API_RELAY_PORT = 6443;
/** Gateways when the caller names none (the addresses the StaticRoute examples use). */
export const DEFAULT_GATEWAYS = ['10.116.0.5', '10.116.0.12'];
/** First host number handed to nodes (10.116.0.10); addresses already used by gateways are skipped. */
export const FIRST_NODE_HOST = 10;
/** The only prefixes a gateway may host as traffic destinations: documentation ranges, never routed anywhere. */
export const ALLOWED_DESTINATION_RANGES = ['198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'];
