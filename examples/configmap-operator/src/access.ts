/**
 * The API permissions this operator needs, checked once at start-up (see `preflight` in operator.ts) with
 * SelfSubjectAccessReviews, so that a missing RBAC rule is reported up front, by name, instead of as a 403 in the
 * middle of some handler. rbac.yaml grants exactly this list; the integration tests run the operator with it.
 */
import type { KubeApi, KubeObject } from 'opkit';
import { GROUP } from './types.js';

/** One permission: verb on a resource (and subresource) of an API group. */
export interface Permission {
  group: string;
  resource: string;
  subresource?: string;
  verb: string;
}

/**
 * Every request the operator sends, by resource. The framework itself lists, watches and patches the watched
 * resource (finalizer and state annotations), gets it again after a patch conflict, patches its status, lists and
 * watches the ConfigMaps it renders (a secondary resource), and posts Events (create, then patch to count repeats);
 * the handlers read, create, patch and delete ConfigMaps.
 */
export const REQUIRED_PERMISSIONS: readonly Permission[] = Object.freeze([
  ...['get', 'list', 'watch', 'patch'].map((verb) => ({ group: GROUP, resource: 'configtemplates', verb })),
  { group: GROUP, resource: 'configtemplates', subresource: 'status', verb: 'patch' },
  ...['get', 'list', 'watch', 'create', 'patch', 'delete'].map((verb) => ({ group: '', resource: 'configmaps', verb })),
  ...['create', 'patch'].map((verb) => ({ group: '', resource: 'events', verb })),
]);

/** `verb group/resource[/subresource]`, e.g. `patch examples.opkit.dev/configtemplates/status`. */
export function describePermission(permission: Permission): string {
  const resource = permission.subresource ? `${permission.resource}/${permission.subresource}` : permission.resource;
  return `${permission.verb} ${permission.group ? `${permission.group}/` : ''}${resource}`;
}

const ACCESS_REVIEWS = { group: 'authorization.k8s.io', version: 'v1', plural: 'selfsubjectaccessreviews' };

/** The answer to a SelfSubjectAccessReview (not stored, so its metadata is nearly empty). */
interface AccessReview extends KubeObject {
  status?: { allowed?: boolean; reason?: string };
}

/**
 * The permissions of `permissions` that the API server denies to this client in `namespace` (all namespaces when
 * undefined). Any user may create SelfSubjectAccessReviews (the default `system:basic-user` role allows it).
 */
export async function missingPermissions(
  api: KubeApi,
  permissions: readonly Permission[],
  namespace: string | undefined,
): Promise<Permission[]> {
  const answers = await Promise.all(
    permissions.map(async (permission) => {
      const review = await api.create<AccessReview>(ACCESS_REVIEWS, {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: {
            ...(namespace === undefined ? {} : { namespace }),
            group: permission.group,
            resource: permission.resource,
            ...(permission.subresource ? { subresource: permission.subresource } : {}),
            verb: permission.verb,
          },
        },
      });
      return review.status?.allowed === true ? undefined : permission;
    }),
  );
  return answers.filter((permission): permission is Permission => permission !== undefined);
}
