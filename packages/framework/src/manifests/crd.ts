/**
 * CustomResourceDefinitions from TypeScript: the schema is written once with TypeBox (`@sinclair/typebox`), the spec
 * and status types are inferred from it (`Static<typeof Spec>`), and `crdManifest` writes the CRD, so the YAML and
 * the handlers' types cannot drift apart.
 *
 * TypeBox writes JSON Schema, of which Kubernetes accepts a structural subset. The helpers in {@link Kube} write the
 * Kubernetes forms (`additionalProperties` maps, string enums, int-or-string, list types, preserved unknown
 * fields, CEL rules); `crdManifest` refuses what the API server would refuse anyway (`const`, `anyOf` unions,
 * `patternProperties`, `$ref`, a node without a `type`), naming the path.
 */
// Types only: importing TypeBox's builder would make every opkit process load it (several MiB more resident memory);
// the helpers below build the same schema objects themselves.
import type { SchemaOptions, Static, TArray, TSchema, TUnsafe } from '@sinclair/typebox';

/** One CEL rule (`x-kubernetes-validations`). */
export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  /** `FieldValueInvalid` (default), `FieldValueForbidden`, `FieldValueRequired`, `FieldValueDuplicate`. */
  reason?: string;
  fieldPath?: string;
  /** Whether the rule also runs on updates that leave the value as it was (`optionalOldSelf`). */
  optionalOldSelf?: boolean;
}

/** A printer column (`additionalPrinterColumns`). */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  format?: string;
  /** 0 shows it in `kubectl get`; higher only with `-o wide`. */
  priority?: number;
}

/** One served version of a resource. */
export interface CustomResourceVersion {
  /** e.g. `v1`. */
  name: string;
  /** Defaults to true. */
  served?: boolean;
  /** Exactly one version is stored. Defaults to true. */
  storage?: boolean;
  /** The spec's schema; the type of `spec` is `Static<typeof spec>`. */
  spec: TSchema;
  /** The status's schema. Defaults to none (no `status` property). */
  status?: TSchema;
  /** Whether objects must have a spec. Defaults to true. */
  specRequired?: boolean;
  /** CEL rules on the whole object (e.g. across spec and metadata). */
  validations?: CelRule[];
  /** `status: {}` and/or `scale`. Defaults to none. */
  subresources?: {
    status?: Record<string, never>;
    scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  };
  printerColumns?: PrinterColumn[];
  deprecated?: boolean;
  deprecationWarning?: string;
}

/** A custom resource, as code: what `crdManifest` turns into a CustomResourceDefinition. */
export interface CustomResource {
  group: string;
  kind: string;
  plural: string;
  /** Defaults to the kind in lower case. */
  singular?: string;
  shortNames?: string[];
  categories?: string[];
  scope: 'Namespaced' | 'Cluster';
  versions: CustomResourceVersion[];
}

const RESOURCE = Symbol.for('opkit:custom-resource');

/** A {@link CustomResource} marked for `opkit manifests crd`, which finds it among a module's exports. */
export type DefinedCustomResource<R extends CustomResource = CustomResource> = R & { readonly [RESOURCE]: true };

/**
 * Declares a custom resource. `opkit manifests crd <module>` prints every one that the module exports.
 *
 * @example
 * ```ts
 * export const WidgetSpec = Type.Object({ size: Type.Integer({ minimum: 1 }) });
 * export type WidgetSpec = Static<typeof WidgetSpec>;
 * export const WIDGETS = defineCustomResource({
 *   group: 'example.com', kind: 'Widget', plural: 'widgets', scope: 'Cluster',
 *   versions: [{ name: 'v1', spec: WidgetSpec, subresources: { status: {} } }],
 * });
 * ```
 */
export function defineCustomResource<R extends CustomResource>(resource: R): DefinedCustomResource<R> {
  const stored = resource.versions.filter((version) => version.storage ?? true);
  if (stored.length !== 1)
    throw new Error(`${resource.kind}: exactly one version must be stored, not ${stored.length}`);
  return Object.defineProperty({ ...resource }, RESOURCE, { value: true }) as DefinedCustomResource<R>;
}

/** Whether `value` was made by {@link defineCustomResource}. */
export function isCustomResource(value: unknown): value is DefinedCustomResource {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[RESOURCE] === true;
}

/** The CustomResourceDefinition of `resource`. Throws on a schema the API server would not accept as structural. */
export function crdManifest(resource: CustomResource): Record<string, unknown> {
  const names = {
    plural: resource.plural,
    singular: resource.singular ?? resource.kind.toLowerCase(),
    kind: resource.kind,
    ...(resource.shortNames ? { shortNames: resource.shortNames } : {}),
    ...(resource.categories ? { categories: resource.categories } : {}),
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${resource.plural}.${resource.group}` },
    spec: {
      group: resource.group,
      scope: resource.scope,
      names,
      versions: resource.versions.map((version) => versionManifest(resource, version)),
    },
  };
}

function versionManifest(resource: CustomResource, version: CustomResourceVersion): Record<string, unknown> {
  const where = `${resource.kind} ${version.name}`;
  const properties: Record<string, unknown> = { spec: plainSchema(version.spec, `${where}: spec`) };
  if (version.status) properties.status = plainSchema(version.status, `${where}: status`);
  const root: Record<string, unknown> = {
    type: 'object',
    ...((version.specRequired ?? true) ? { required: ['spec'] } : {}),
    properties,
    ...(version.validations ? { 'x-kubernetes-validations': version.validations } : {}),
  };
  return {
    name: version.name,
    served: version.served ?? true,
    storage: version.storage ?? true,
    ...(version.deprecated ? { deprecated: true } : {}),
    ...(version.deprecationWarning ? { deprecationWarning: version.deprecationWarning } : {}),
    ...(version.subresources ? { subresources: version.subresources } : {}),
    ...(version.printerColumns ? { additionalPrinterColumns: version.printerColumns } : {}),
    schema: { openAPIV3Schema: root },
  };
}

/** Keywords a structural schema may hold (besides `x-kubernetes-*`). */
const ALLOWED = new Set([
  'type',
  'format',
  'description',
  'title',
  'nullable',
  'enum',
  'default',
  'example',
  'maximum',
  'minimum',
  'exclusiveMaximum',
  'exclusiveMinimum',
  'multipleOf',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'uniqueItems',
  'maxProperties',
  'minProperties',
  'required',
  'items',
  'properties',
  'additionalProperties',
]);

/** The schema as plain JSON (TypeBox's symbol keys dropped), checked to be structural. */
function plainSchema(schema: TSchema, where: string): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema), (_key, value: unknown) =>
    isSchemaNode(value) ? readableOrder(value) : value,
  ) as Record<string, unknown>;
  assertStructural(plain, where);
  return plain;
}

function isSchemaNode(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

/** `description` and `type` first, then the rest as written: how CRDs are usually read. */
function readableOrder(node: Record<string, unknown>): Record<string, unknown> {
  const { description, type, ...rest } = node;
  return { ...(description === undefined ? {} : { description }), type, ...rest };
}

function assertStructural(node: Record<string, unknown>, where: string): void {
  for (const key of Object.keys(node)) {
    if (!ALLOWED.has(key) && !key.startsWith('x-kubernetes-')) {
      throw new Error(`${where}: '${key}' is not allowed in a CRD schema (use the Kube helpers, e.g. Kube.enum)`);
    }
  }
  const typed =
    typeof node.type === 'string' ||
    node['x-kubernetes-int-or-string'] === true ||
    node['x-kubernetes-preserve-unknown-fields'] === true;
  if (!typed) throw new Error(`${where}: every schema needs a type`);
  if (node.uniqueItems === true) throw new Error(`${where}: uniqueItems is not allowed (use Kube.list with 'set')`);
  if (node.properties && node.additionalProperties !== undefined && node.additionalProperties !== false) {
    throw new Error(`${where}: properties and additionalProperties exclude each other`);
  }
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Record<string, unknown>>)) {
    assertStructural(child, `${where}.${name}`);
  }
  if (typeof node.items === 'object' && node.items !== null) {
    assertStructural(node.items as Record<string, unknown>, `${where}[]`);
  }
  if (typeof node.additionalProperties === 'object' && node.additionalProperties !== null) {
    assertStructural(node.additionalProperties as Record<string, unknown>, `${where}.*`);
  }
}

/** TypeBox's mark of a schema's kind (`Kind` in `@sinclair/typebox`), a registered symbol shared by every copy. */
const TYPEBOX_KIND = Symbol.for('TypeBox.Kind');

/** A schema of TypeBox's `Unsafe` kind: written as given, inferred as `T` (what `Type.Unsafe<T>(schema)` makes). */
function unsafe<T>(schema: Record<string, unknown>): TUnsafe<T> {
  return { ...schema, [TYPEBOX_KIND]: 'Unsafe' } as unknown as TUnsafe<T>;
}

/** Schema options plus CEL rules. */
export type KubeSchemaOptions = SchemaOptions & { 'x-kubernetes-validations'?: CelRule[] };

/**
 * Helpers for the schema forms Kubernetes uses that TypeBox writes differently (or not at all). Each infers the
 * TypeScript type that the form accepts.
 */
export const Kube = {
  /** CEL rules for a schema's options: `Type.Object({...}, Kube.rules({ rule, message }))`. */
  rules(...rules: CelRule[]): { 'x-kubernetes-validations': CelRule[] } {
    return { 'x-kubernetes-validations': rules };
  },
  /** An object with any keys and values of `value`: `additionalProperties` (TypeBox's `Record` writes patterns). */
  map<V extends TSchema>(value: V, options: KubeSchemaOptions = {}): TUnsafe<Record<string, Static<V>>> {
    return unsafe<Record<string, Static<V>>>({ ...options, type: 'object', additionalProperties: value });
  },
  /** A string of one of `values` (`enum`; TypeBox's literal unions write `anyOf` of `const`). */
  enum<const T extends readonly string[]>(values: T, options: KubeSchemaOptions = {}): TUnsafe<T[number]> {
    return unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
  },
  /** An integer or a string (`x-kubernetes-int-or-string`), such as a port number or name, or a percentage. */
  intOrString(options: KubeSchemaOptions = {}): TUnsafe<number | string> {
    return unsafe<number | string>({ ...options, 'x-kubernetes-int-or-string': true });
  },
  /** An object whose fields are kept as they are, unchecked (`x-kubernetes-preserve-unknown-fields`). */
  preserveUnknown(options: KubeSchemaOptions = {}): TUnsafe<Record<string, unknown>> {
    return unsafe<Record<string, unknown>>({
      ...options,
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
    });
  },
  /**
   * A list with its merge semantics (`x-kubernetes-list-type`): `atomic` (replaced whole), `set` (unique scalars),
   * or `map` keyed by `mapKeys` (entries merged by key, as server-side apply does for conditions).
   */
  list<T extends TSchema>(
    items: T,
    listType: 'atomic' | 'set' | { map: string[] },
    options: KubeSchemaOptions = {},
  ): TArray<T> {
    const kind =
      typeof listType === 'string'
        ? { 'x-kubernetes-list-type': listType }
        : { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': listType.map };
    return { ...options, ...kind, [TYPEBOX_KIND]: 'Array', type: 'array', items } as unknown as TArray<T>;
  },
};
