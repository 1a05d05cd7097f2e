/**
 * The StaticRoute operator: keeps each node's routing table in line with StaticRoute objects.
 * `StaticRouteAgent` is the node agent (an opkit operator class, node scope; also runnable with `opkit run`),
 * `Aggregator` the status aggregator; `main.ts` is the entry point of the container image for both roles.
 */
export { StaticRouteAgent, PERSISTENCE_PREFIX } from './agent/agent-operator.js';
export { Aggregator, type AggregatorSettings } from './aggregator/aggregator.js';
export { readConfig, type OperatorConfig } from './logic/config.js';
export { readAggregatorConfig, type AggregatorConfig } from './logic/aggregator-config.js';
