/**
 * Permissions as code: what a component declares it calls, and the RBAC PolicyRules that grant exactly that.
 *
 * Each component that sends requests states them next to the code that sends them (`ReportWriter.permissions`,
 * `Reconciler.permissions`, `LeaderElector.permissions`, `@Operator({ permissions })`), as kubebuilder's
 * `+kubebuilder:rbac` markers do; `derivePermissions` (derive.ts) adds what the framework itself calls and merges
 * everything here into rules.
 *
 * The unit of comparison is a grant: one verb on one resource, in one namespace or cluster-wide, for one object name
 * or every object. Rules are only a compact way to write sets of grants, so two sets of rules agree exactly when
 * their grants do; the merge drops a grant that another grant of the set already covers (a namespaced one under the
 * same cluster-wide one, a named one under the same unnamed one).
 *
 * Pure: imports nothing that does I/O (the decorators import its types).
 */

/** An RBAC verb (the ones Kubernetes checks on resources). */
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

/** Verbs in the order rules list them (Kubernetes' own order: reads, then writes). */
export const VERB_ORDER: readonly Verb[] = [
  'get',
  'list',
  'watch',
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
];

/**
 * The namespace of a declaration whose requests go to the namespaces the runtime watches (`settings.namespaces`;
 * cluster-wide when it watches all), such as a namespaced operator's handlers writing next to their object.
 */
export const IN_WATCHED_NAMESPACES: unique symbol = Symbol.for('opkit:in-watched-namespaces');

/**
 * One permission a component needs: `verbs` on `resource` of `group`.
 *
 * @example
 * ```ts
 * { group: '', resource: 'configmaps', verbs: ['get', 'create', 'patch', 'delete'], namespace: 'demo' }
 * { group: 'example.com', resource: 'widgets/status', verbs: ['patch'] }        // a subresource
 * ```
 */
export interface PermissionDeclaration {
  /** API group; `''` for the core group. */
  group: string;
  /** Plural resource name, with `/<subresource>` for a subresource (`widgets/status`). */
  resource: string;
  verbs: readonly Verb[];
  /**
   * The namespace the requests go to, granted by a Role there. Omitted: cluster-wide, granted by the ClusterRole
   * (cluster-scoped resources, and namespaced ones in every namespace). {@link IN_WATCHED_NAMESPACES}: in each
   * namespace the runtime watches (`derivePermissions` resolves it from the settings).
   */
  namespace?: string | typeof IN_WATCHED_NAMESPACES;
  /** Only these objects (RBAC cannot limit `create`, `list`, `watch` or `deletecollection` by name). Omitted: all. */
  resourceNames?: readonly string[];
}

/** A resource collection as the framework's client names it (structurally `ResourceRef`). */
export interface ResourceName {
  group: string;
  plural: string;
}

/** A declaration for `ref` (and `subresource`), e.g. `permission(LEASES, ['create'], { namespace })`. */
export function permission(
  ref: ResourceName,
  verbs: readonly Verb[],
  options: {
    namespace?: string | typeof IN_WATCHED_NAMESPACES;
    resourceNames?: readonly string[];
    subresource?: string;
  } = {},
): PermissionDeclaration {
  return {
    group: ref.group,
    resource: options.subresource ? `${ref.plural}/${options.subresource}` : ref.plural,
    verbs,
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    ...(options.resourceNames !== undefined ? { resourceNames: options.resourceNames } : {}),
  };
}

/** An RBAC PolicyRule as written in a Role or ClusterRole. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

/** One verb on one resource, in one namespace (undefined: cluster-wide), for one object (`*`: all). */
export interface Grant {
  namespace: string | undefined;
  group: string;
  resource: string;
  resourceName: string;
  verb: string;
}

/** Rules split by where they are granted: cluster-wide (a ClusterRole) and per namespace (a Role each). */
export interface DerivedPermissions {
  cluster: PolicyRule[];
  /** Namespace -> rules, namespaces sorted. */
  namespaced: Record<string, PolicyRule[]>;
}

const ALL = '*';

/**
 * The declaration with {@link IN_WATCHED_NAMESPACES} resolved: one per namespace of `namespaces`, or cluster-wide
 * when that is empty (every namespace watched).
 */
export function inNamespaces(
  declaration: PermissionDeclaration,
  namespaces: readonly string[],
): PermissionDeclaration[] {
  if (declaration.namespace !== IN_WATCHED_NAMESPACES) return [declaration];
  const { namespace: _, ...rest } = declaration;
  return namespaces.length === 0 ? [rest] : namespaces.map((namespace) => ({ ...rest, namespace }));
}

/** The grants a declaration makes ({@link IN_WATCHED_NAMESPACES} counts as every namespace: resolve it first). */
export function grantsOf(declaration: PermissionDeclaration): Grant[] {
  const names = declaration.resourceNames?.length ? declaration.resourceNames : [ALL];
  const namespace = typeof declaration.namespace === 'string' ? declaration.namespace : undefined;
  return declaration.verbs.flatMap((verb) =>
    names.map((resourceName) => ({
      namespace,
      group: declaration.group,
      resource: declaration.resource,
      resourceName,
      verb,
    })),
  );
}

/** The grants of PolicyRules, as granted in `namespace` (undefined: cluster-wide). */
export function grantsOfRules(rules: readonly PolicyRule[], namespace: string | undefined): Grant[] {
  return rules.flatMap((rule) =>
    rule.apiGroups.flatMap((group) =>
      rule.resources.flatMap((resource) =>
        grantsOf({ group, resource, verbs: rule.verbs as Verb[], namespace, resourceNames: rule.resourceNames }),
      ),
    ),
  );
}

/** The grants of derived permissions. */
export function grantsOfDerived(derived: DerivedPermissions): Grant[] {
  return [
    ...grantsOfRules(derived.cluster, undefined),
    ...Object.entries(derived.namespaced).flatMap(([namespace, rules]) => grantsOfRules(rules, namespace)),
  ];
}

/** A stable key of a grant. */
function grantKey(grant: Grant): string {
  return [grant.namespace ?? '', grant.group, grant.resource, grant.resourceName, grant.verb].join('\u0000');
}

/** Whether `grant` is implied by another grant of `keys`: the same one cluster-wide, or for every object. */
function covered(grant: Grant, keys: ReadonlySet<string>): boolean {
  const wider: Grant[] = [];
  if (grant.namespace !== undefined) wider.push({ ...grant, namespace: undefined });
  if (grant.resourceName !== ALL) wider.push({ ...grant, resourceName: ALL });
  if (grant.namespace !== undefined && grant.resourceName !== ALL) {
    wider.push({ ...grant, namespace: undefined, resourceName: ALL });
  }
  return wider.some((candidate) => keys.has(grantKey(candidate)));
}

/** Grants without duplicates and without those another grant of the set covers, in first-seen order. */
export function normalizeGrants(grants: readonly Grant[]): Grant[] {
  const unique = new Map<string, Grant>();
  for (const grant of grants) if (!unique.has(grantKey(grant))) unique.set(grantKey(grant), grant);
  const keys = new Set(unique.keys());
  return [...unique.values()].filter((grant) => !covered(grant, keys));
}

/**
 * Merges declarations into rules: one rule per resource and set of object names, verbs in Kubernetes' order,
 * resources in the order first declared; covered grants dropped (see the file comment).
 */
export function mergePermissions(declarations: readonly PermissionDeclaration[]): DerivedPermissions {
  const grants = normalizeGrants(declarations.flatMap(grantsOf));
  // Per namespace, resource and verb: the object names (or ALL) granted.
  const byVerb = new Map<string, { grant: Grant; names: string[] }>();
  for (const grant of grants) {
    const key = [grant.namespace ?? '', grant.group, grant.resource, grant.verb].join('\u0000');
    const entry = byVerb.get(key);
    if (entry) entry.names.push(grant.resourceName);
    else byVerb.set(key, { grant, names: [grant.resourceName] });
  }
  // Verbs with the same names on the same resource share a rule.
  const rules = new Map<string, { namespace: string | undefined; rule: PolicyRule }>();
  for (const { grant, names } of byVerb.values()) {
    const sorted = [...names].sort();
    const key = [grant.namespace ?? '', grant.group, grant.resource, sorted.join(',')].join('\u0000');
    let entry = rules.get(key);
    if (!entry) {
      const rule: PolicyRule = { apiGroups: [grant.group], resources: [grant.resource], verbs: [] };
      if (sorted[0] !== ALL) rule.resourceNames = sorted;
      entry = { namespace: grant.namespace, rule };
      rules.set(key, entry);
    }
    entry.rule.verbs.push(grant.verb);
  }
  const derived: DerivedPermissions = { cluster: [], namespaced: {} };
  const namespaced = new Map<string, PolicyRule[]>();
  for (const { namespace, rule } of rules.values()) {
    rule.verbs.sort((a, b) => verbRank(a) - verbRank(b));
    if (namespace === undefined) derived.cluster.push(rule);
    else namespaced.set(namespace, [...(namespaced.get(namespace) ?? []), rule]);
  }
  for (const namespace of [...namespaced.keys()].sort()) derived.namespaced[namespace] = namespaced.get(namespace)!;
  return derived;
}

function verbRank(verb: string): number {
  const rank = VERB_ORDER.indexOf(verb as Verb);
  return rank === -1 ? VERB_ORDER.length : rank;
}

/** `patch on coordination.k8s.io/leases [lease-a] in namespace ns` (or `cluster-wide`). */
export function describeGrant(grant: Grant): string {
  const resource = grant.group ? `${grant.group}/${grant.resource}` : grant.resource;
  const names = grant.resourceName === ALL ? '' : ` [${grant.resourceName}]`;
  const where = grant.namespace === undefined ? 'cluster-wide' : `in namespace ${grant.namespace}`;
  return `${grant.verb} on ${resource}${names} ${where}`;
}

/** How two sets of grants differ: what `actual` lacks of `expected`, and what it has beyond it. */
export interface GrantDrift {
  /** Grants in `expected` that `actual` does not make, described (see {@link describeGrant}). */
  missing: string[];
  /** Grants in `actual` that `expected` does not make, described. */
  extra: string[];
}

/**
 * Compares two sets of grants exactly, after normalizing both (a covered grant counts as its cover).
 * `{ missing: [], extra: [] }` means they agree.
 */
export function compareGrants(expected: readonly Grant[], actual: readonly Grant[]): GrantDrift {
  const want = new Map(normalizeGrants(expected).map((grant) => [grantKey(grant), grant]));
  const have = new Map(normalizeGrants(actual).map((grant) => [grantKey(grant), grant]));
  const describeAll = (grants: Grant[]): string[] => grants.map(describeGrant);
  return {
    missing: describeAll([...want].filter(([key]) => !have.has(key)).map(([, grant]) => grant)),
    extra: describeAll([...have].filter(([key]) => !want.has(key)).map(([, grant]) => grant)),
  };
}
