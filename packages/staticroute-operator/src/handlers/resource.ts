/** The StaticRoute resource as the framework's API client names it. */
import type { ResourceRef } from 'opkit';
import { STATIC_ROUTE_GROUP, STATIC_ROUTE_PLURAL, STATIC_ROUTE_VERSION } from '../logic/spec.js';

export const STATIC_ROUTES: ResourceRef = {
  group: STATIC_ROUTE_GROUP,
  version: STATIC_ROUTE_VERSION,
  plural: STATIC_ROUTE_PLURAL,
  namespaced: false,
};

/** Whether an error is the API's HTTP `status` (duck-typed: the framework's ApiError carries `statusCode`). */
export function isApiStatus(error: unknown, status: number): boolean {
  return typeof error === 'object' && error !== null && (error as { statusCode?: unknown }).statusCode === status;
}
