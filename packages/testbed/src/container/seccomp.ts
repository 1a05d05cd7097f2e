/**
 * The container runtime's default seccomp profile (Kubernetes `seccompProfile: RuntimeDefault`) as an OCI
 * `linux.seccomp` section.
 *
 * Source: the default profile of the containers tools (CRI-O's and Podman's RuntimeDefault, derived from Docker's),
 * `/usr/share/containers/seccomp.json` of Debian's golang-github-containers-common package, which
 * `scripts/bootstrap.sh` unpacks into `.tools/seccomp/containers-default.json`. That file is in Docker's profile
 * format: rules apply per architecture and per capability (a rule with `includes.caps` applies only when every one
 * of those capabilities is in the bounding set; `excludes.caps` drops it when any is). The conversion below applies
 * those conditions for the container's bounding set, as the runtimes do when they build the OCI spec.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPOSITORY_ROOT } from './image.js';

interface ProfileArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

interface ProfileRule {
  names: string[];
  action: string;
  args?: ProfileArg[] | null;
  errnoRet?: number;
  includes?: { arches?: string[]; caps?: string[]; minKernel?: string };
  excludes?: { arches?: string[]; caps?: string[]; minKernel?: string };
}

/** A profile in Docker's seccomp JSON format. */
export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  syscalls: ProfileRule[];
}

/** The OCI runtime spec's `linux.seccomp`. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: ProfileArg[] }[];
}

/** Go's architecture names (used by the profile) and libseccomp's, for the machines the test bed runs on. */
const architectures: Record<string, { profile: string; seccomp: string }> = {
  x64: { profile: 'amd64', seccomp: 'SCMP_ARCH_X86_64' },
  arm64: { profile: 'arm64', seccomp: 'SCMP_ARCH_AARCH64' },
};

/** Where bootstrap puts the containers tools' default profile. */
export function runtimeDefaultProfilePath(repoDir = REPOSITORY_ROOT): string {
  return path.join(repoDir, '.tools/seccomp/containers-default.json');
}

function kernelAtLeast(minimum: string | undefined, release: string): boolean {
  if (!minimum) return true;
  const have = release.split(/[.-]/).map(Number);
  const want = minimum.split('.').map(Number);
  for (let i = 0; i < want.length; i += 1) {
    const a = have[i] ?? 0;
    const b = want[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/**
 * Converts a Docker-format profile into `linux.seccomp` for a container with the given bounding set (capability
 * names with the `CAP_` prefix) on `arch` (Node's `process.arch`) and kernel `kernelRelease` (`uname -r`).
 */
export function ociSeccompFromProfile(
  profile: DockerSeccompProfile,
  bounding: string[],
  arch: string = process.arch,
  kernelRelease = '0',
): OciSeccomp {
  const names = architectures[arch];
  if (!names) throw new Error(`no seccomp architecture mapping for ${arch}`);
  const mapped = profile.archMap?.find((entry) => entry.architecture === names.seccomp);
  const syscalls: OciSeccomp['syscalls'] = [];
  for (const rule of profile.syscalls) {
    const { includes = {}, excludes = {} } = rule;
    if (excludes.arches?.includes(names.profile)) continue;
    if (excludes.caps?.some((cap) => bounding.includes(cap))) continue;
    if (excludes.minKernel && kernelAtLeast(excludes.minKernel, kernelRelease)) continue;
    if (includes.arches && includes.arches.length > 0 && !includes.arches.includes(names.profile)) continue;
    if (includes.caps?.some((cap) => !bounding.includes(cap))) continue;
    if (!kernelAtLeast(includes.minKernel, kernelRelease)) continue;
    syscalls.push({
      names: rule.names,
      action: rule.action,
      ...(rule.errnoRet !== undefined ? { errnoRet: rule.errnoRet } : {}),
      ...(rule.args && rule.args.length > 0 ? { args: rule.args } : {}),
    });
  }
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures: [names.seccomp, ...(mapped?.subArchitectures ?? [])],
    syscalls,
  };
}

/** The RuntimeDefault profile for a bounding set; throws naming bootstrap when the profile is not installed. */
export function runtimeDefaultSeccomp(
  bounding: string[],
  kernelRelease: string,
  repoDir = REPOSITORY_ROOT,
): OciSeccomp {
  const file = runtimeDefaultProfilePath(repoDir);
  if (!existsSync(file)) {
    throw new Error(
      `${file} is missing: scripts/bootstrap.sh unpacks it from Debian's golang-github-containers-common`,
    );
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as DockerSeccompProfile;
  return ociSeccompFromProfile(profile, bounding, process.arch, kernelRelease);
}
