/**
 * The API permissions this operator needs, checked once at start-up (see `preflight` in operator.ts) with
 * SelfSubjectAccessReviews, so that a missing RBAC rule is reported up front, by name, instead of as a 403 in the
 * middle of some handler.
 *
 * The list is derived from the code (`derivePermissions`): what the framework sends for the operator class, plus
 * {@link HANDLER_PERMISSIONS}. rbac.yaml grants exactly that (test/unit/manifests.test.ts checks it); the integration
 * tests run the operator with it. The reviews themselves need no grant: every user may create them (the default
 * `system:basic-user` role).
 */
import {
  grantsOfDerived,
  IN_WATCHED_NAMESPACES,
  permission,
  type DerivedPermissions,
  type KubeApi,
  type KubeObject,
  type PermissionDeclaration,
} from 'opkit';
import { CONFIG_MAPS } from './types.js';

/** One permission: verb on a resource (and subresource) of an API group. */
export interface Permission {
  group: string;
  resource: string;
  subresource?: string;
  verb: string;
}

/**
 * What the handlers send themselves (`converge`, `cleanUp` in operator.ts): they read, create, patch and delete the
 * ConfigMap next to their template. The framework derives the rest: it lists, watches and patches the templates
 * (finalizer, state annotations), gets one again after a patch conflict, patches their status, lists and watches the
 * ConfigMaps (a secondary resource), and posts Events.
 */
export const HANDLER_PERMISSIONS: PermissionDeclaration[] = [
  permission(CONFIG_MAPS, ['get', 'create', 'patch', 'delete'], { namespace: IN_WATCHED_NAMESPACES }),
];

/** The derived permissions granted in `namespace` (undefined: cluster-wide), as access reviews ask for them. */
export function permissionsIn(derived: DerivedPermissions, namespace: string | undefined): Permission[] {
  return grantsOfDerived(derived)
    .filter((grant) => grant.namespace === namespace)
    .map((grant) => {
      const [resource, subresource] = grant.resource.split('/') as [string, string | undefined];
      return { group: grant.group, resource, ...(subresource ? { subresource } : {}), verb: grant.verb };
    });
}

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
