/**
 * The shipped manifests are what the code says: crd.yaml is the CRD generated from src/schema.ts (regenerate it with
 * `pnpm run manifests` after building), and rbac.yaml grants the example's ServiceAccount exactly the rules derived
 * from the operator class, watching namespace `demo` as the README runs it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkRbac, crdManifest, derivePermissions, generatedHeader, manifestsYaml, type Manifest } from 'opkit';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigTemplateOperator } from '../../src/operator.js';
import { CONFIG_TEMPLATE_RESOURCE } from '../../src/schema.js';

const read = (file: string): string => readFileSync(fileURLToPath(new URL(`../../${file}`, import.meta.url)), 'utf8');

describe('examples/configmap-operator manifests', () => {
  it('crd.yaml is the output of `opkit manifests crd dist/schema.js`', () => {
    const generated = manifestsYaml([crdManifest(CONFIG_TEMPLATE_RESOURCE)], generatedHeader('crd', 'dist/schema.js'));
    expect(read('crd.yaml'), 'crd.yaml is out of date: run `pnpm run build && pnpm run manifests`').toBe(generated);
  });

  it('rbac.yaml grants the ServiceAccount exactly the rules derived from the operator', () => {
    const manifests = parseAllDocuments(read('rbac.yaml')).map((document) => document.toJS() as Manifest);
    const derived = derivePermissions({ operators: [ConfigTemplateOperator], settings: { namespaces: ['demo'] } });
    expect(checkRbac(manifests, { namespace: 'demo', name: 'configmap-operator' }, derived)).toEqual({
      missing: [],
      extra: [],
    });
  });
});
