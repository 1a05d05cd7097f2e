/**
 * Which handler answers which path, and the webhook configurations that make the API server call them. Pure.
 *
 * One route per handler: `/validate/<plural>/<id>` and `/mutate/<plural>/<id>`. The API server sends a request only
 * for the resource, operations and subresources the handler's webhook names, so the server routes by path alone;
 * it still checks that the request is for the route's resource (a configuration edited by hand could send anything).
 */
import type { AdmissionSpec } from '../decorators/admission.js';

/** The resource an operator class handles, as routing needs it. */
export interface AdmissionResource {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

const ADMISSION_GROUP = 'admissionregistration.k8s.io';
/** The two configuration resources, by the kind of handler their webhooks call. */
export const CONFIGURATION_RESOURCES = {
  validate: { group: ADMISSION_GROUP, version: 'v1', plural: 'validatingwebhookconfigurations' },
  mutate: { group: ADMISSION_GROUP, version: 'v1', plural: 'mutatingwebhookconfigurations' },
} as const;

/** One handler's route. */
export interface AdmissionRoute {
  path: string;
  /** The operator class's name (logs and metrics). */
  operator: string;
  resource: AdmissionResource;
  spec: AdmissionSpec;
  /** The webhook's name in its configuration: a DNS name of at least three labels, unique per configuration. */
  webhookName: string;
}

/** Where the API server reaches the server: a URL (local runs, tests) or a Service (in a cluster). */
export type ClientConfigBase = { url: string } | { service: { namespace: string; name: string; port?: number } };

/** The path of a handler's route. */
export function routePath(kind: AdmissionSpec['kind'], plural: string, id: string): string {
  return `/${kind}/${plural}/${id}`;
}

/** `<kind>-<id>.<plural>.<group>` (`core` for the core group): a DNS name of at least three labels, as required. */
export function webhookName(spec: AdmissionSpec, resource: AdmissionResource): string {
  return `${spec.kind}-${spec.id}.${resource.plural}.${resource.group || 'core'}`;
}

/** Builds the route table; throws when two handlers would share a path. */
export function buildRoutes(
  operators: ReadonlyArray<{ name: string; resource: AdmissionResource; handlers: readonly AdmissionSpec[] }>,
): Map<string, AdmissionRoute> {
  const routes = new Map<string, AdmissionRoute>();
  for (const { name, resource, handlers } of operators) {
    for (const spec of handlers) {
      const path = routePath(spec.kind, resource.plural, spec.id);
      const taken = routes.get(path);
      if (taken) {
        throw new Error(
          `${name}.${String(spec.method)} and ${taken.operator}.${String(taken.spec.method)} both answer ${path}: ` +
            'give one of them another id',
        );
      }
      routes.set(path, { path, operator: name, resource, spec, webhookName: webhookName(spec, resource) });
    }
  }
  return routes;
}

/** The request is for the route's resource (group, version and plural), as its webhook's rule says. */
export function requestMatchesRoute(
  route: AdmissionRoute,
  resource: { group: string; version: string; resource: string },
): boolean {
  const expected = route.resource;
  return (
    resource.group === expected.group && resource.version === expected.version && resource.resource === expected.plural
  );
}

function clientConfig(base: ClientConfigBase, path: string, caBundle: string): Record<string, unknown> {
  if ('url' in base) return { url: `${base.url.replace(/\/+$/, '')}${path}`, caBundle };
  const { namespace, name, port } = base.service;
  return { service: { namespace, name, path, port: port ?? 443 }, caBundle };
}

function webhook(route: AdmissionRoute, base: ClientConfigBase, caBundle: string): Record<string, unknown> {
  const { spec, resource } = route;
  const resources = spec.subresources.map((sub) => (sub ? `${resource.plural}/${sub}` : resource.plural));
  return {
    name: route.webhookName,
    admissionReviewVersions: ['v1'],
    clientConfig: clientConfig(base, route.path, caBundle),
    rules: [
      {
        apiGroups: [resource.group],
        apiVersions: [resource.version],
        operations: spec.operations,
        resources,
        scope: resource.namespaced ? 'Namespaced' : 'Cluster',
      },
    ],
    failurePolicy: spec.failurePolicy,
    sideEffects: spec.sideEffects,
    timeoutSeconds: spec.timeoutSeconds,
    // Exact: a request for another version of the resource is not converted and sent to a handler written for this
    // one.
    matchPolicy: 'Exact',
    ...(spec.objectSelector ? { objectSelector: spec.objectSelector } : {}),
    ...(spec.namespaceSelector ? { namespaceSelector: spec.namespaceSelector } : {}),
    ...(spec.kind === 'mutate' ? { reinvocationPolicy: 'Never' } : {}),
  };
}

/** The two configurations (either may have no webhooks) for `routes`, named `name`. */
export function webhookConfigurations(
  name: string,
  routes: Iterable<AdmissionRoute>,
  base: ClientConfigBase,
  caBundle: string,
): { validating: Record<string, unknown>; mutating: Record<string, unknown> } {
  const all = [...routes];
  const make = (kind: 'Validating' | 'Mutating', of: AdmissionSpec['kind']): Record<string, unknown> => ({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: `${kind}WebhookConfiguration`,
    metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'opkit' } },
    webhooks: all.filter((route) => route.spec.kind === of).map((route) => webhook(route, base, caBundle)),
  });
  return { validating: make('Validating', 'validate'), mutating: make('Mutating', 'mutate') };
}
