/** Finding kube-apiserver and etcd: the envtest convention first, else the cached build from Go modules. */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Paths of the two control plane executables. */
export interface ControlPlaneBinaries {
  apiServer: string;
  etcd: string;
}

/** The build script; `src/` and `dist/` both sit one level below the package root. */
export const buildScriptPath = fileURLToPath(new URL('../../scripts/build-control-plane.sh', import.meta.url));

function executablesIn(folder: string): ControlPlaneBinaries | undefined {
  const found = { apiServer: path.join(folder, 'kube-apiserver'), etcd: path.join(folder, 'etcd') };
  try {
    accessSync(found.apiServer, constants.X_OK);
    accessSync(found.etcd, constants.X_OK);
    return found;
  } catch {
    return undefined;
  }
}

let pending: Promise<ControlPlaneBinaries> | undefined;

/**
 * Resolves the kube-apiserver and etcd executables.
 *
 * 1. `KUBEBUILDER_ASSETS` (what `setup-envtest` prints): used when it names a folder holding both; when set but
 *    incomplete, this throws instead of silently building.
 * 2. Otherwise runs `scripts/build-control-plane.sh`, which prints its cache folder at once when the binaries are
 *    there and builds them from Go modules when not (minutes; its progress goes to this process's stderr).
 *
 * The result is memoised per process.
 */
export function resolveControlPlaneBinaries(): Promise<ControlPlaneBinaries> {
  pending ??= locate().catch((error: unknown) => {
    pending = undefined;
    throw error;
  });
  return pending;
}

async function locate(): Promise<ControlPlaneBinaries> {
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets) {
    const found = executablesIn(assets);
    if (!found) throw new Error(`KUBEBUILDER_ASSETS=${assets} does not hold executable kube-apiserver and etcd`);
    return found;
  }
  const folder = await runBuildScript();
  const found = executablesIn(folder);
  if (!found) throw new Error(`${buildScriptPath} printed ${folder}, which lacks kube-apiserver or etcd`);
  return found;
}

function runBuildScript(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [buildScriptPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.once('error', (error) => reject(new Error(`cannot run ${buildScriptPath}: ${error.message}`)));
    child.once('close', (code) => {
      const folder = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && folder) resolve(folder);
      else reject(new Error(`${buildScriptPath} failed (exit ${code}); its stderr above names the failing step`));
    });
  });
}
