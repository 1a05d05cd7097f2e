/**
 * The `ConfigTemplate` resource and the ConfigMaps it renders: names and shapes shared by the operator, its pure
 * helpers and its tests. The spec and status types are inferred from the schema (schema.ts), which also makes the CRD.
 */
import type { Static } from '@sinclair/typebox';
import type { KubeObject, ResourceRef } from 'opkit';
import type { ConditionSchema, ConfigTemplateSpecSchema, ConfigTemplateStatusSchema } from './schema.js';

/** API group of `ConfigTemplate`. */
export const GROUP = 'examples.opkit.dev';
/** API version of `ConfigTemplate`. */
export const VERSION = 'v1';
/** `apiVersion` of `ConfigTemplate` objects (owner references need it). */
export const API_VERSION = `${GROUP}/${VERSION}`;
/** Kind of the custom resource. */
export const KIND = 'ConfigTemplate';

/** The ConfigTemplate collection (namespaced). */
export const CONFIG_TEMPLATES: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: 'configtemplates',
  namespaced: true,
};
/** The core ConfigMap collection. */
export const CONFIG_MAPS: ResourceRef = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };

/** Label on every rendered ConfigMap: who manages it (for `kubectl get cm -l`). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
/** Value of {@link MANAGED_BY_LABEL}. */
export const MANAGED_BY = 'opkit-example-configmap';
/** Label on every rendered ConfigMap: the name of the ConfigTemplate it was rendered from. */
export const TEMPLATE_LABEL = `${GROUP}/config-template`;

/** `ConfigTemplate.spec`, as the schema accepts it. The CRD validates the shapes; the operator the templates. */
export type ConfigTemplateSpec = Static<typeof ConfigTemplateSpecSchema>;

/** A `metav1.Condition`, as the status schema declares it. */
export type Condition = Static<typeof ConditionSchema>;

/** `ConfigTemplate.status`, as the schema declares it (the framework writes `handlers`). */
export type ConfigTemplateStatus = Static<typeof ConfigTemplateStatusSchema>;

/** A ConfigMap as the API returns it. */
export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

/** A ConfigMap as this operator writes it: no server-assigned fields (uid, resourceVersion) yet. */
export interface ConfigMapBody {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    ownerReferences: OwnerReference[];
  };
  data: Record<string, string>;
}

/** An entry of `metadata.ownerReferences`. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}
