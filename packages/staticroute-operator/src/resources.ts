/** The API resources the operator reads and writes, as the framework's API client names them. */
import type { ResourceRef } from 'opkit';
import { REPORT_PLURAL } from './logic/report.js';
import { STATIC_ROUTE_GROUP, STATIC_ROUTE_PLURAL, STATIC_ROUTE_VERSION } from './logic/spec.js';

export const STATIC_ROUTES: ResourceRef = {
  group: STATIC_ROUTE_GROUP,
  version: STATIC_ROUTE_VERSION,
  plural: STATIC_ROUTE_PLURAL,
  namespaced: false,
};

/** `StaticRouteNodeStatus`: one report per node (deploy/crd-report.yaml). */
export const NODE_REPORTS: ResourceRef = {
  group: STATIC_ROUTE_GROUP,
  version: STATIC_ROUTE_VERSION,
  plural: REPORT_PLURAL,
  namespaced: false,
};

export const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };

/** Whether an error is the API's HTTP `status` (duck-typed: the framework's ApiError carries `statusCode`). */
export function isApiStatus(error: unknown, status: number): boolean {
  return typeof error === 'object' && error !== null && (error as { statusCode?: unknown }).statusCode === status;
}
