/**
 * URL paths of the Kubernetes REST API.
 */
import type { KubeObject, ResourceRef } from './types.js';

/** Where in a collection {@link resourcePath} points. */
export interface ResourcePathOptions {
  /** Namespace; used only when `ref.namespaced` is true (cluster-scoped resources have no namespace segment). */
  namespace?: string;
  /** Object name; omit for the collection. */
  name?: string;
  /** Subresource such as `status`; needs `name`. */
  subresource?: string;
}

/**
 * Builds the path of a collection, an object or a subresource, with every segment URL-encoded.
 *
 * @example
 * ```ts
 * resourcePath({ group: '', version: 'v1', plural: 'events', namespaced: true }, { namespace: 'default' });
 * // '/api/v1/namespaces/default/events'
 * resourcePath({ group: 'networking.digitalocean.com', version: 'v1', plural: 'staticroutes' }, { name: 'r1', subresource: 'status' });
 * // '/apis/networking.digitalocean.com/v1/staticroutes/r1/status'
 * ```
 * @throws Error when `subresource` is given without `name`, or a namespaced `name` without `namespace`.
 */
export function resourcePath(ref: ResourceRef, opts: ResourcePathOptions = {}): string {
  const segments = ref.group === '' ? ['api', ref.version] : ['apis', ref.group, ref.version];
  if (ref.namespaced && opts.namespace) segments.push('namespaces', opts.namespace);
  else if (ref.namespaced && opts.name !== undefined) {
    throw new Error(`${ref.plural} is namespaced: a namespace is needed to address ${opts.name}`);
  }
  segments.push(ref.plural);
  if (opts.name !== undefined) {
    if (opts.name === '') throw new Error('object name must not be empty');
    segments.push(opts.name);
  }
  if (opts.subresource !== undefined) {
    if (opts.name === undefined) throw new Error(`subresource ${opts.subresource} needs an object name`);
    segments.push(opts.subresource);
  }
  return '/' + segments.map(encodeURIComponent).join('/');
}

/** A readable name for a resource collection, e.g. `staticroutes.networking.digitalocean.com` or `events`. */
export function resourceLabel(ref: ResourceRef): string {
  return ref.group === '' ? ref.plural : `${ref.plural}.${ref.group}`;
}

/** The reflector store key of an object: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(object: Pick<KubeObject, 'metadata'>): string {
  const { namespace, name } = object.metadata;
  return namespace ? `${namespace}/${name}` : name;
}
