import { describe, expect, it } from 'vitest';
import { objectKey, resourceLabel, resourcePath } from '../../src/kube/paths.js';
import { resourcePath as exportedFromClient } from '../../src/kube/client.js';
import type { ResourceRef } from '../../src/kube/types.js';

const staticroutes: ResourceRef = { group: 'networking.digitalocean.com', version: 'v1', plural: 'staticroutes' };
const configmaps: ResourceRef = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };
const nodes: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };

describe('resourcePath', () => {
  it('builds core and group paths for collections, objects and subresources', () => {
    expect(resourcePath(nodes)).toBe('/api/v1/nodes');
    expect(resourcePath(nodes, { name: 'n1' })).toBe('/api/v1/nodes/n1');
    expect(resourcePath(staticroutes)).toBe('/apis/networking.digitalocean.com/v1/staticroutes');
    expect(resourcePath(staticroutes, { name: 'r1', subresource: 'status' })).toBe(
      '/apis/networking.digitalocean.com/v1/staticroutes/r1/status',
    );
  });

  it('adds the namespace segment only for namespaced resources', () => {
    expect(resourcePath(configmaps, { namespace: 'kube-system' })).toBe('/api/v1/namespaces/kube-system/configmaps');
    expect(resourcePath(configmaps, { namespace: 'a', name: 'b' })).toBe('/api/v1/namespaces/a/configmaps/b');
    // All namespaces: no namespace segment.
    expect(resourcePath(configmaps)).toBe('/api/v1/configmaps');
    // Cluster-scoped: a namespace given by mistake must not produce a path that 404s.
    expect(resourcePath(staticroutes, { namespace: 'default', name: 'r1' })).toBe(
      '/apis/networking.digitalocean.com/v1/staticroutes/r1',
    );
  });

  it('encodes every segment', () => {
    expect(resourcePath(configmaps, { namespace: 'ns', name: 'a/b?c' })).toBe(
      '/api/v1/namespaces/ns/configmaps/a%2Fb%3Fc',
    );
  });

  it('refuses ambiguous or invalid requests', () => {
    expect(() => resourcePath(staticroutes, { subresource: 'status' })).toThrow(/needs an object name/);
    expect(() => resourcePath(configmaps, { name: 'x' })).toThrow(/namespace is needed/);
    expect(() => resourcePath(nodes, { name: '' })).toThrow(/must not be empty/);
  });

  it('is re-exported from the client module, as the contract says', () => {
    expect(exportedFromClient).toBe(resourcePath);
  });
});

describe('objectKey and resourceLabel', () => {
  it('keys by namespace/name or name', () => {
    expect(objectKey({ metadata: { name: 'a', namespace: 'ns', uid: 'u', resourceVersion: '1' } })).toBe('ns/a');
    expect(objectKey({ metadata: { name: 'a', uid: 'u', resourceVersion: '1' } })).toBe('a');
  });

  it('labels resources for metrics', () => {
    expect(resourceLabel(staticroutes)).toBe('staticroutes.networking.digitalocean.com');
    expect(resourceLabel(nodes)).toBe('nodes');
  });
});
