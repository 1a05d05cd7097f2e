/** CRDs from TypeBox schemas: the Kubernetes forms, the structural checks, and the types inferred from the schema. */
import { KindGuard, Type, type Static } from '@sinclair/typebox';
import { describe, expect, expectTypeOf, test } from 'vitest';
import { crdManifest, defineCustomResource, isCustomResource, Kube } from '../../src/manifests/crd.js';

const Spec = Type.Object(
  {
    replicas: Type.Integer({ minimum: 0 }),
    port: Kube.intOrString({ description: 'A number or a name.' }),
    mode: Kube.enum(['fast', 'safe'] as const),
    labels: Type.Optional(Kube.map(Type.String({ maxLength: 63 }))),
    hosts: Kube.list(Type.String(), 'set', { maxItems: 8 }),
    extra: Type.Optional(Kube.preserveUnknown()),
  },
  Kube.rules({ rule: 'self.replicas <= 10', messageExpression: "'too many: ' + string(self.replicas)" }),
);

const Status = Type.Object({
  replicas: Type.Optional(Type.Integer()),
  selector: Type.Optional(Type.String()),
  conditions: Type.Optional(Kube.list(Type.Object({ type: Type.String() }), { map: ['type'] })),
});

const WIDGETS = defineCustomResource({
  group: 'example.com',
  kind: 'Widget',
  plural: 'widgets',
  shortNames: ['wd'],
  categories: ['all'],
  scope: 'Cluster',
  versions: [
    {
      name: 'v1',
      spec: Spec,
      status: Status,
      validations: [{ rule: "self.metadata.name != 'forbidden'", message: 'pick another name' }],
      subresources: {
        status: {},
        scale: {
          specReplicasPath: '.spec.replicas',
          statusReplicasPath: '.status.replicas',
          labelSelectorPath: '.status.selector',
        },
      },
      printerColumns: [{ name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', priority: 1 }],
    },
    { name: 'v1beta1', storage: false, served: false, spec: Spec, deprecated: true, deprecationWarning: 'use v1' },
  ],
});

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('crdManifest', () => {
  const crd = crdManifest(WIDGETS) as Doc;
  const [v1, v1beta1] = crd.spec.versions as Doc[];
  const spec = v1!.schema.openAPIV3Schema.properties.spec as Doc;

  test('names, scope and the served versions', () => {
    expect(crd.metadata).toEqual({ name: 'widgets.example.com' });
    expect(crd.spec.names).toEqual({
      plural: 'widgets',
      singular: 'widget',
      kind: 'Widget',
      shortNames: ['wd'],
      categories: ['all'],
    });
    expect(crd.spec.scope).toBe('Cluster');
    expect([v1!.name, v1!.served, v1!.storage]).toEqual(['v1', true, true]);
    expect(v1beta1).toMatchObject({ name: 'v1beta1', served: false, storage: false, deprecated: true });
    expect(v1beta1!.schema.openAPIV3Schema.properties.status).toBeUndefined();
  });

  test('status and scale subresources, printer columns, CEL rules on the object', () => {
    expect(v1!.subresources).toEqual({
      status: {},
      scale: {
        specReplicasPath: '.spec.replicas',
        statusReplicasPath: '.status.replicas',
        labelSelectorPath: '.status.selector',
      },
    });
    expect(v1!.additionalPrinterColumns).toEqual([
      { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', priority: 1 },
    ]);
    expect(v1!.schema.openAPIV3Schema).toMatchObject({
      type: 'object',
      required: ['spec'],
      'x-kubernetes-validations': [{ rule: "self.metadata.name != 'forbidden'", message: 'pick another name' }],
    });
  });

  test('the Kubernetes forms: int-or-string, enum, additionalProperties map, list types, unknown fields, CEL', () => {
    expect(spec.required).toEqual(['replicas', 'port', 'mode', 'hosts']);
    expect(spec['x-kubernetes-validations']).toEqual([
      { rule: 'self.replicas <= 10', messageExpression: "'too many: ' + string(self.replicas)" },
    ]);
    expect(spec.properties.port).toEqual({ description: 'A number or a name.', 'x-kubernetes-int-or-string': true });
    expect(spec.properties.mode).toEqual({ type: 'string', enum: ['fast', 'safe'] });
    expect(spec.properties.labels).toEqual({ type: 'object', additionalProperties: { type: 'string', maxLength: 63 } });
    expect(spec.properties.hosts).toEqual({
      type: 'array',
      maxItems: 8,
      'x-kubernetes-list-type': 'set',
      items: { type: 'string' },
    });
    expect(spec.properties.extra).toEqual({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
    const conditions = v1!.schema.openAPIV3Schema.properties.status.properties.conditions;
    expect(conditions).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
  });

  test('description and type come first in every schema', () => {
    expect(Object.keys(spec.properties.port)).toEqual(['description', 'x-kubernetes-int-or-string']);
    expect(Object.keys(spec.properties.hosts)[0]).toBe('type');
  });

  test("the helpers' schemas are TypeBox's own kinds (what Type.Unsafe and Type.Array make)", () => {
    expect(KindGuard.IsUnsafe(Kube.enum(['a'] as const))).toBe(true);
    expect(KindGuard.IsUnsafe(Kube.map(Type.String()))).toBe(true);
    expect(KindGuard.IsUnsafe(Kube.intOrString())).toBe(true);
    expect(KindGuard.IsUnsafe(Kube.preserveUnknown())).toBe(true);
    expect(KindGuard.IsArray(Kube.list(Type.String(), 'atomic'))).toBe(true);
    expect(KindGuard.IsArray(Kube.list(Type.String(), 'atomic', { minItems: 1 }))).toBe(true);
  });

  test('the spec type is inferred from the same schema', () => {
    expectTypeOf<Static<typeof Spec>>().toEqualTypeOf<{
      replicas: number;
      port: number | string;
      mode: 'fast' | 'safe';
      labels?: Record<string, string>;
      hosts: string[];
      extra?: Record<string, unknown>;
    }>();
  });
});

describe('what the API server would refuse is refused here, naming the path', () => {
  const withSpec = (spec: ReturnType<typeof Type.Object>) =>
    crdManifest({ group: 'g.io', kind: 'K', plural: 'ks', scope: 'Cluster', versions: [{ name: 'v1', spec }] });

  test('literal unions (anyOf of const), TypeBox records (patternProperties), untyped nodes, uniqueItems', () => {
    expect(() => withSpec(Type.Object({ mode: Type.Union([Type.Literal('a'), Type.Literal('b')]) }))).toThrow(
      /K v1: spec\.mode: 'anyOf' is not allowed/,
    );
    expect(() => withSpec(Type.Object({ labels: Type.Record(Type.String(), Type.String()) }))).toThrow(
      /spec\.labels: 'patternProperties' is not allowed/,
    );
    expect(() => withSpec(Type.Object({ anything: Type.Unknown() }))).toThrow(
      /spec\.anything: every schema needs a type/,
    );
    expect(() => withSpec(Type.Object({ tags: Type.Array(Type.String(), { uniqueItems: true }) }))).toThrow(
      /spec\.tags: uniqueItems is not allowed/,
    );
    expect(() => withSpec(Type.Object({ items: Type.Array(Type.Object({ x: Type.Any() })) }))).toThrow(
      /spec\.items\[\]\.x: every schema needs a type/,
    );
  });

  test('exactly one stored version', () => {
    const spec = Type.Object({});
    expect(() =>
      defineCustomResource({
        group: 'g.io',
        kind: 'K',
        plural: 'ks',
        scope: 'Cluster',
        versions: [
          { name: 'v1', spec },
          { name: 'v2', spec },
        ],
      }),
    ).toThrow(/exactly one version must be stored, not 2/);
  });

  test('defined resources are recognized among exports; plain objects are not', () => {
    expect(isCustomResource(WIDGETS)).toBe(true);
    expect(isCustomResource({ ...WIDGETS })).toBe(false);
  });
});
