/**
 * Manifests from code: RBAC rules derived from what an operator declares (`derivePermissions`, `checkRbac`) and
 * CustomResourceDefinitions from TypeBox schemas (`defineCustomResource`, `crdManifest`). See docs/manifests.md.
 */
export {
  compareGrants,
  describeGrant,
  grantsOf,
  grantsOfDerived,
  grantsOfRules,
  IN_WATCHED_NAMESPACES,
  inNamespaces,
  mergePermissions,
  normalizeGrants,
  permission,
  VERB_ORDER,
  type DerivedPermissions,
  type Grant,
  type GrantDrift,
  type PermissionDeclaration,
  type PolicyRule,
  type ResourceName,
  type Verb,
} from './permissions.js';
export {
  derivePermissions,
  eventPermissions,
  operatorPermissions,
  watchPermissions,
  type PermissionSettings,
  type PermissionSources,
} from './derive.js';
export {
  checkRbac,
  grantsOfManifests,
  parseServiceAccount,
  rbacManifests,
  type Manifest,
  type RbacManifestOptions,
  type ServiceAccountName,
} from './rbac.js';
export {
  crdManifest,
  defineCustomResource,
  isCustomResource,
  Kube,
  type CelRule,
  type CustomResource,
  type CustomResourceVersion,
  type DefinedCustomResource,
  type KubeSchemaOptions,
  type PrinterColumn,
} from './crd.js';
export { generatedHeader, manifestsYaml } from './yaml.js';
