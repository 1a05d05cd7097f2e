/**
 * RBAC manifests from derived permissions, and the other way round: what a set of manifests grants a ServiceAccount,
 * so that hand-written RBAC can be checked against the code (`checkRbac`).
 */
import {
  compareGrants,
  grantsOfDerived,
  grantsOfRules,
  type DerivedPermissions,
  type Grant,
  type GrantDrift,
  type PolicyRule,
} from './permissions.js';

/** A ServiceAccount, `namespace/name`. */
export interface ServiceAccountName {
  namespace: string;
  name: string;
}

/** Options of {@link rbacManifests}. */
export interface RbacManifestOptions {
  /** Name of the ClusterRole and of every Role (and of their bindings). */
  name: string;
  /** Bind the roles to this ServiceAccount (ClusterRoleBinding, RoleBindings). Defaults to no bindings. */
  serviceAccount?: ServiceAccountName;
}

/** A Kubernetes object as the manifests hold it. */
export type Manifest = Record<string, unknown>;

const RBAC_API = 'rbac.authorization.k8s.io/v1';

/** Parses `namespace/name`. */
export function parseServiceAccount(value: string): ServiceAccountName {
  const [namespace, name, ...rest] = value.split('/');
  if (!namespace || !name || rest.length > 0)
    throw new Error(`expected a ServiceAccount as namespace/name, not ${value}`);
  return { namespace, name };
}

/**
 * A ClusterRole with the cluster-wide rules (when there are any) and a Role in every namespace with rules there,
 * each bound to the ServiceAccount when one is given.
 */
export function rbacManifests(derived: DerivedPermissions, options: RbacManifestOptions): Manifest[] {
  const { name, serviceAccount } = options;
  const subjects = serviceAccount
    ? [{ kind: 'ServiceAccount', name: serviceAccount.name, namespace: serviceAccount.namespace }]
    : undefined;
  const documents: Manifest[] = [];
  const role = (kind: 'ClusterRole' | 'Role', rules: PolicyRule[], namespace?: string): void => {
    const metadata = namespace === undefined ? { name } : { name, namespace };
    documents.push({ apiVersion: RBAC_API, kind, metadata, rules: structuredClone(rules) });
    if (subjects) {
      const binding = kind === 'ClusterRole' ? 'ClusterRoleBinding' : 'RoleBinding';
      const roleRef = { apiGroup: 'rbac.authorization.k8s.io', kind, name };
      documents.push({ apiVersion: RBAC_API, kind: binding, metadata, roleRef, subjects });
    }
  };
  if (derived.cluster.length > 0) role('ClusterRole', derived.cluster);
  for (const [namespace, rules] of Object.entries(derived.namespaced)) role('Role', rules, namespace);
  return documents;
}

interface Binding {
  kind: string;
  metadata: { name: string; namespace?: string };
  roleRef: { kind: string; name: string };
  subjects?: Array<{ kind: string; name: string; namespace?: string }>;
}

interface Role {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: PolicyRule[];
}

/**
 * Every grant that `manifests` give `serviceAccount`: the rules of each role a binding of it refers to, cluster-wide
 * for a ClusterRoleBinding, in the binding's namespace for a RoleBinding (of a Role or a ClusterRole). Roles that are
 * not in `manifests` are reported as an error: their rules cannot be known.
 */
export function grantsOfManifests(manifests: readonly Manifest[], serviceAccount: ServiceAccountName): Grant[] {
  const objects = manifests.filter((document) => document && typeof document === 'object') as unknown[];
  const roles = objects as Role[];
  const bindings = (objects as Binding[]).filter(
    (document) =>
      (document.kind === 'ClusterRoleBinding' || document.kind === 'RoleBinding') &&
      (document.subjects ?? []).some(
        (subject) =>
          subject.kind === 'ServiceAccount' &&
          subject.name === serviceAccount.name &&
          subject.namespace === serviceAccount.namespace,
      ),
  );
  return bindings.flatMap((binding) => {
    const namespace = binding.kind === 'RoleBinding' ? binding.metadata.namespace : undefined;
    const role = roles.find(
      (candidate) =>
        candidate.kind === binding.roleRef.kind &&
        candidate.metadata?.name === binding.roleRef.name &&
        (candidate.kind === 'ClusterRole' || candidate.metadata.namespace === binding.metadata.namespace),
    );
    if (!role)
      throw new Error(
        `${binding.kind} ${binding.metadata.name} refers to ${binding.roleRef.kind} ${binding.roleRef.name}, which the manifests lack`,
      );
    return grantsOfRules(role.rules ?? [], namespace);
  });
}

/**
 * How the grants of `manifests` to `serviceAccount` differ from the derived permissions: `missing` are grants the
 * code needs that the manifests lack, `extra` grants the manifests make that the code does not need. Both empty
 * means they agree exactly.
 *
 * @example
 * ```ts
 * expect(checkRbac(parsedRbacYaml, { namespace: 'demo', name: 'my-operator' }, derivePermissions(sources)))
 *   .toEqual({ missing: [], extra: [] });
 * ```
 */
export function checkRbac(
  manifests: readonly Manifest[],
  serviceAccount: ServiceAccountName,
  derived: DerivedPermissions,
): GrantDrift {
  return compareGrants(grantsOfDerived(derived), grantsOfManifests(manifests, serviceAccount));
}
