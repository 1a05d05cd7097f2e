/**
 * The `ConfigTemplate` resource as code: its schema, from which both the handlers' types (types.ts) and the
 * CustomResourceDefinition (../crd.yaml, `pnpm run manifests`) are made, so neither can drift from the other.
 *
 * The schema refuses malformed objects at `kubectl apply`; whether every placeholder names a defined value is the
 * operator's check (it reports an InvalidTemplate condition and a Warning event).
 */
import { Type } from '@sinclair/typebox';
import { defineCustomResource, Kube } from 'opkit';
import { GROUP, KIND, VERSION } from './types.js';

/** `ConfigTemplate.spec`. */
export const ConfigTemplateSpecSchema = Type.Object({
  targetName: Type.String({
    description: "Name of the ConfigMap to render, in the ConfigTemplate's namespace.",
    minLength: 1,
    maxLength: 253,
    // A DNS subdomain, as ConfigMap names must be.
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  }),
  data: Kube.map(Type.String({ maxLength: 262144 }), {
    description:
      'ConfigMap key -> template. `{{ name }}` is replaced by spec.values[name]; every placeholder must name a ' +
      'defined value.',
    minProperties: 1,
    maxProperties: 64,
    ...Kube.rules({
      rule: "self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$') && k != '.' && !k.startsWith('..'))",
      message:
        "keys must be valid ConfigMap keys: letters, digits, '-', '_' and '.', at most 253 characters, not '.' and " +
        "not starting with '..'",
    }),
  }),
  values: Type.Optional(
    Kube.map(Type.String({ maxLength: 65536 }), {
      description: 'Placeholder name -> value. Values are inserted verbatim (never expanded again).',
      maxProperties: 256,
      ...Kube.rules({
        rule: "self.all(k, size(k) <= 63 && k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",
        message: 'names must be identifiers ([A-Za-z_][A-Za-z0-9_]*) of at most 63 characters',
      }),
    }),
  ),
});

/** A `metav1.Condition`. */
export const ConditionSchema = Type.Object({
  type: Type.String(),
  status: Kube.enum(['True', 'False', 'Unknown'] as const),
  reason: Type.String(),
  message: Type.Optional(Type.String()),
  lastTransitionTime: Type.String({ format: 'date-time' }),
  observedGeneration: Type.Optional(Type.Integer({ format: 'int64' })),
});

/** `ConfigTemplate.status`. */
export const ConfigTemplateStatusSchema = Type.Object({
  configMap: Type.Optional(Type.String({ description: 'The ConfigMap that holds the current rendering.' })),
  conditions: Type.Optional(Kube.list(ConditionSchema, { map: ['type'] })),
  handlers: Type.Optional(
    Kube.preserveUnknown({
      description: 'Written by opkit, the outcome of each handler (success, retrying, failed).',
    }),
  ),
});

/** The ConfigTemplate resource: `opkit manifests crd dist/schema.js` prints its CRD. */
export const CONFIG_TEMPLATE_RESOURCE = defineCustomResource({
  group: GROUP,
  kind: KIND,
  plural: 'configtemplates',
  shortNames: ['ctpl'],
  scope: 'Namespaced',
  versions: [
    {
      name: VERSION,
      spec: ConfigTemplateSpecSchema,
      status: ConfigTemplateStatusSchema,
      subresources: { status: {} },
      printerColumns: [
        { name: 'Target', type: 'string', jsonPath: '.spec.targetName' },
        { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
        { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
        { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      ],
    },
  ],
});
