/**
 * `opkit manifests rbac|crd <module>`: prints the RBAC rules and CRDs that a module's code declares, as YAML.
 *
 * `rbac` derives from the `@Operator` classes the module defines (with `--namespace` as the watched namespaces), or
 * from the module's export named by `--sources`: a `PermissionSources` object, or a (possibly async) function returning one
 * (a function lets a module refer to operator classes that import it). `crd` prints every `defineCustomResource`
 * export of the module.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { importOperators } from '../engine/modules.js';
import { crdManifest, isCustomResource } from './crd.js';
import { derivePermissions, type PermissionSources } from './derive.js';
import { parseServiceAccount, rbacManifests, type Manifest } from './rbac.js';
import { generatedHeader, manifestsYaml } from './yaml.js';

export const MANIFESTS_USAGE = `Usage: opkit manifests rbac <module> [--name name] [--service-account ns/name]
                              [--namespace ns ...] [--sources export]
       opkit manifests crd <module>

rbac: prints the ClusterRole (cluster-wide grants) and a Role per namespace (namespaced grants) that the code of
      <module> needs: derived from its @Operator classes (watched in --namespace, default all), or from its export
      --sources (a PermissionSources object, or a function returning one or a promise of one). With --service-account, bindings too.
crd:  prints the CustomResourceDefinition of every defineCustomResource(...) that <module> exports.
`;

function moduleUrl(module: string): string {
  return module.startsWith('file:') ? module : pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
}

/** What `opkit manifests` prints: the manifests, and the header that names the command that made them. */
export interface ManifestsOutput {
  documents: Manifest[];
  header: string;
}

/** The manifests `argv` (after `manifests`) asks for. Throws a usage error message on bad input. */
export async function manifestsFor(argv: string[]): Promise<ManifestsOutput> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      name: { type: 'string' },
      'service-account': { type: 'string' },
      namespace: { type: 'string', multiple: true },
      sources: { type: 'string' },
    },
  });
  const [what, module, ...rest] = positionals;
  if ((what !== 'rbac' && what !== 'crd') || !module || rest.length > 0) {
    throw new Error('expected: opkit manifests rbac|crd <module> [options]');
  }
  if (what === 'crd') {
    const exports = (await import(moduleUrl(module))) as Record<string, unknown>;
    const resources = Object.values(exports).filter(isCustomResource);
    if (resources.length === 0) throw new Error(`${module} exports no defineCustomResource(...)`);
    return { documents: resources.map(crdManifest), header: generatedHeader('crd', module) };
  }
  let sources: PermissionSources;
  if (values.sources) {
    const exported = ((await import(moduleUrl(module))) as Record<string, unknown>)[values.sources];
    if (exported === undefined) throw new Error(`${module} has no export ${values.sources}`);
    sources = (await (typeof exported === 'function' ? (exported as () => unknown)() : exported)) as PermissionSources;
  } else {
    const operators = await importOperators(module);
    if (operators.length === 0) throw new Error(`${module} defines no @Operator class (or name --sources)`);
    sources = { operators, settings: values.namespace ? { namespaces: values.namespace } : {} };
  }
  const documents = rbacManifests(derivePermissions(sources), {
    name: values.name ?? 'operator',
    ...(values['service-account'] ? { serviceAccount: parseServiceAccount(values['service-account']) } : {}),
  });
  return { documents, header: generatedHeader('rbac', module) };
}

/** Runs `opkit manifests ...`: prints YAML to stdout; returns the exit status (2 for usage errors). */
export async function runManifestsCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(MANIFESTS_USAGE);
    return 0;
  }
  let output: ManifestsOutput;
  try {
    output = await manifestsFor(argv);
  } catch (error) {
    process.stderr.write(`opkit: ${(error as Error).message}\n\n${MANIFESTS_USAGE}`);
    return 2;
  }
  process.stdout.write(manifestsYaml(output.documents, output.header));
  return 0;
}
