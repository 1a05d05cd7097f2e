/**
 * The `ConfigTemplate` resource (see ../crd.yaml) and the ConfigMaps it renders: names and shapes shared by the
 * operator, its pure helpers and its tests.
 */
import type { KubeObject, ResourceRef } from 'opkit';

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

/** `ConfigTemplate.spec`. The CRD validates the shapes; the operator validates the templates. */
export interface ConfigTemplateSpec {
  /** Name of the ConfigMap to render, in the template's namespace. */
  targetName: string;
  /** ConfigMap key -> template text with `{{ name }}` placeholders. */
  data: Record<string, string>;
  /** Placeholder name -> value. */
  values?: Record<string, string>;
}

/** A `metav1.Condition`, as the CRD's status schema declares it. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** `ConfigTemplate.status` as far as this operator writes it (the framework adds `status.handlers`). */
export interface ConfigTemplateStatus {
  /** The ConfigMap that currently holds this template's rendering, once one was written. */
  configMap?: string;
  conditions?: Condition[];
}

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
