/**
 * The StaticRoute operator: keeps each node's routing table in line with StaticRoute objects.
 * `StaticRouteOperator` is the opkit operator class (also runnable with `opkit run`); `main.ts` is the entry point of
 * the container image.
 */
export { StaticRouteOperator, PERSISTENCE_PREFIX } from './handlers/operator.js';
export { readConfig, type OperatorConfig } from './logic/config.js';
