/**
 * A CycloneDX 1.5 SBOM of the npm packages installed under an application folder, read from the installed tree
 * itself (not from a lockfile), so it lists exactly what the image holds.
 *
 * How: every folder directly under a `node_modules` (`node_modules/<name>`, `node_modules/@scope/<name>`) that holds
 * a `package.json` is a package; symlinks (pnpm's layout) are followed and counted once by their real path. Each
 * package's dependencies are resolved the way Node.js resolves them (the nearest `node_modules/<dep>` walking up from
 * the package), which gives the dependency graph.
 *
 * Guarantees: deterministic output for the same tree (sorted, serial number derived from the content, timestamp only
 * when given). Caveat: licences are copied from `package.json` as SPDX expressions, unchecked.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';

/** A component of the SBOM (the parts this generator writes). */
export interface SbomComponent {
  type: 'library' | 'application';
  'bom-ref': string;
  name: string;
  group?: string;
  version: string;
  purl: string;
  description?: string;
  licenses?: { expression: string }[];
  properties?: { name: string; value: string }[];
}

/** The SBOM document. */
export interface CycloneDxBom {
  bomFormat: 'CycloneDX';
  specVersion: '1.5';
  serialNumber: string;
  version: 1;
  metadata: {
    timestamp?: string;
    tools: { components: { type: 'application'; name: string; version: string }[] };
    component: SbomComponent;
  };
  components: SbomComponent[];
  dependencies: { ref: string; dependsOn: string[] }[];
}

/** Options of {@link generateSbom}. */
export interface GenerateSbomOptions {
  /** Where the application folder will be in the image (recorded in `cdx:npm:package:path`). Defaults to `/app`. */
  installRoot?: string;
  /** Further components that are not in the tree (the Node.js binary, say). */
  extraComponents?: SbomComponent[];
  /** ISO timestamp for `metadata.timestamp` (omitted when not given, to keep builds reproducible). */
  timestamp?: string;
}

interface PackageJson {
  name?: string;
  version?: string;
  description?: string;
  license?: string | { type?: string };
  private?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

interface InstalledPackage {
  dir: string;
  manifest: PackageJson;
  ref: string;
}

/** `pkg:npm/%40scope/name@1.2.3`, the package URL of an npm package. */
export function npmPurl(name: string, version: string): string {
  const encoded = name.startsWith('@') ? `%40${name.slice(1)}` : name;
  return `pkg:npm/${encoded}@${version}`;
}

function readManifest(dir: string): PackageJson | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
  } catch {
    return undefined;
  }
}

/** Real paths of every package folder directly under a node_modules folder, anywhere below `appDir`. */
function findPackageDirs(appDir: string): Set<string> {
  const found = new Set<string>();
  const visitedModules = new Set<string>();
  const scanModules = (modulesDir: string): void => {
    const real = realpathSync(modulesDir);
    if (visitedModules.has(real)) return;
    visitedModules.add(real);
    for (const entry of readdirSync(real)) {
      if (entry === '.bin') continue;
      const entryPath = path.join(real, entry);
      if (entry.startsWith('@')) {
        if (!statSync(entryPath).isDirectory()) continue;
        for (const scoped of readdirSync(entryPath)) visitPackage(path.join(entryPath, scoped));
      } else if (entry === '.pnpm') {
        for (const store of readdirSync(entryPath)) {
          const nested = path.join(entryPath, store, 'node_modules');
          if (existsSync(nested)) scanModules(nested);
        }
      } else if (!entry.startsWith('.')) {
        visitPackage(entryPath);
      }
    }
  };
  const visitPackage = (dir: string): void => {
    if (!existsSync(path.join(dir, 'package.json'))) return;
    const real = realpathSync(dir);
    if (found.has(real)) return;
    found.add(real);
    const nested = path.join(real, 'node_modules');
    if (existsSync(nested)) scanModules(nested);
  };
  const top = path.join(appDir, 'node_modules');
  if (existsSync(top)) scanModules(top);
  return found;
}

/** Node.js's lookup of `name` from a package folder: the nearest `node_modules/<name>` walking up. */
function resolveFrom(dir: string, name: string, stopAt: string): string | undefined {
  for (let current = dir; ; current = path.dirname(current)) {
    if (path.basename(current) !== 'node_modules') {
      const candidate = path.join(current, 'node_modules', name);
      if (existsSync(path.join(candidate, 'package.json'))) return realpathSync(candidate);
    }
    if (current === stopAt || current === path.dirname(current)) return undefined;
  }
}

function licenseOf(manifest: PackageJson): { expression: string }[] | undefined {
  const license = typeof manifest.license === 'string' ? manifest.license : manifest.license?.type;
  return license ? [{ expression: license }] : undefined;
}

function component(pkg: InstalledPackage, appDir: string, installRoot: string): SbomComponent {
  const name = pkg.manifest.name!;
  const version = pkg.manifest.version!;
  const slash = name.startsWith('@') ? name.indexOf('/') : -1;
  const properties = [
    { name: 'cdx:npm:package:path', value: path.posix.join(installRoot, path.relative(appDir, pkg.dir)) },
  ];
  if (pkg.manifest.private) properties.push({ name: 'cdx:npm:package:private', value: 'true' });
  const licenses = licenseOf(pkg.manifest);
  return {
    type: 'library',
    'bom-ref': pkg.ref,
    ...(slash > 0 ? { group: name.slice(0, slash), name: name.slice(slash + 1) } : { name }),
    version,
    purl: npmPurl(name, version),
    ...(pkg.manifest.description ? { description: pkg.manifest.description } : {}),
    ...(licenses ? { licenses } : {}),
    properties,
  };
}

/**
 * The SBOM of the application in `appDir` (its own `package.json` is the SBOM's subject) and of every npm package
 * installed below it.
 */
export function generateSbom(appDir: string, options: GenerateSbomOptions = {}): CycloneDxBom {
  const installRoot = options.installRoot ?? '/app';
  const root = realpathSync(appDir);
  const rootManifest = readManifest(root);
  if (!rootManifest?.name || !rootManifest.version) throw new Error(`${appDir}/package.json has no name and version`);
  const packages = new Map<string, InstalledPackage>();
  const refCounts = new Map<string, number>();
  for (const dir of [...findPackageDirs(root)].sort()) {
    const manifest = readManifest(dir);
    if (!manifest?.name || !manifest.version) continue;
    // The same name@version installed twice (pnpm peer variants) gets a distinguishing suffix.
    const base = npmPurl(manifest.name, manifest.version);
    const seen = refCounts.get(base) ?? 0;
    refCounts.set(base, seen + 1);
    packages.set(dir, { dir, manifest, ref: seen === 0 ? base : `${base}#${seen + 1}` });
  }
  const subject: InstalledPackage = {
    dir: root,
    manifest: rootManifest,
    ref: npmPurl(rootManifest.name, rootManifest.version),
  };
  const dependencies = [subject, ...packages.values()].map((pkg) => {
    const names = Object.keys({
      ...pkg.manifest.dependencies,
      ...pkg.manifest.optionalDependencies,
      ...pkg.manifest.peerDependencies,
    });
    const dependsOn = names
      .map((name) => resolveFrom(pkg.dir, name, root))
      .flatMap((dir) => (dir && packages.has(dir) ? [packages.get(dir)!.ref] : []));
    return { ref: pkg.ref, dependsOn: [...new Set(dependsOn)].sort() };
  });
  const components = [
    ...[...packages.values()].map((pkg) => component(pkg, root, installRoot)),
    ...(options.extraComponents ?? []),
  ].sort((a, b) => a['bom-ref'].localeCompare(b['bom-ref']));
  const body = { components, dependencies };
  const digest = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  // A UUID-shaped serial number derived from the content (version nibble 5, RFC 4122 variant).
  const serial = `${digest.slice(0, 8)}-${digest.slice(8, 12)}-5${digest.slice(13, 16)}-a${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${serial}`,
    version: 1,
    metadata: {
      ...(options.timestamp ? { timestamp: options.timestamp } : {}),
      tools: { components: [{ type: 'application', name: '@opkit/testbed container/sbom', version: '1' }] },
      component: { ...component(subject, root, installRoot), type: 'application' },
    },
    components,
    dependencies,
  };
}
