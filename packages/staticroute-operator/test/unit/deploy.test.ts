/**
 * The deploy manifests agree with the code and with the brief's hardening rules, and the release file is what the
 * generator makes of the parts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_PROBE_PORT, DEFAULT_ROUTE_PROTOCOL } from '../../src/logic/config.js';
import { MAX_DESTINATIONS, MAX_GATEWAYS } from '../../src/logic/spec.js';
import { REPO_DIR } from '../support/build.js';

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const read = (file: string): Doc[] =>
  parseAllDocuments(readFileSync(path.join(REPO_DIR, 'deploy', file), 'utf8')).map(
    (document) => document.toJS() as Doc,
  );

describe('deploy/crd.yaml', () => {
  const [crd] = read('crd.yaml') as [Doc];
  const version = crd.spec.versions[0];
  const spec = version.schema.openAPIV3Schema.properties.spec;

  it("keeps the seed's names", () => {
    expect(crd.metadata.name).toBe('staticroutes.networking.digitalocean.com');
    expect(crd.spec.scope).toBe('Cluster');
    expect(crd.spec.names).toMatchObject({ kind: 'StaticRoute', plural: 'staticroutes', shortNames: ['sr'] });
    expect(version.name).toBe('v1');
    expect(version.subresources).toEqual({ status: {} });
  });

  it('has the limits the operator enforces', () => {
    expect(spec.properties.destinations.maxItems).toBe(MAX_DESTINATIONS);
    expect(spec.properties.gateways.maxItems).toBe(MAX_GATEWAYS);
  });

  it('has the printer columns', () => {
    expect(version.additionalPrinterColumns.map((column: Doc) => column.name)).toEqual([
      'Destinations',
      'Gateway',
      'Ready',
      'Age',
    ]);
  });
});

describe('deploy/daemonset.yaml', () => {
  const [daemonSet] = read('daemonset.yaml') as [Doc];
  const pod = daemonSet.spec.template.spec;
  const [container] = pod.containers;
  const env = Object.fromEntries(container.env.map((item: Doc) => [item.name, item.value ?? item.valueFrom]));

  it("keeps the seed's names", () => {
    expect(daemonSet.metadata).toMatchObject({ name: 'k8s-staticroute-operator', namespace: 'static-routes' });
    expect(daemonSet.spec.template.metadata.labels).toEqual({ name: 'k8s-staticroute-operator' });
    expect(pod.serviceAccountName).toBe('k8s-staticroute-operator');
  });

  it('runs on every node in the host network, as system-node-critical', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(env.NODE_NAME).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
  });

  it('is non-root with only NET_ADMIN, a read-only root filesystem and seccomp RuntimeDefault', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toEqual({
      runAsNonRoot: true,
      // File capabilities (setcap in the image) need it; see the comment in the manifest.
      allowPrivilegeEscalation: true,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] },
    });
  });

  it('probes and configuration match the code defaults; state on an emptyDir; resources set', () => {
    expect(env.PROBE_PORT).toBe(String(DEFAULT_PROBE_PORT));
    expect(env.ROUTE_PROTOCOL).toBe(String(DEFAULT_ROUTE_PROTOCOL));
    expect(container.ports).toEqual([{ name: 'probes', containerPort: DEFAULT_PROBE_PORT, protocol: 'TCP' }]);
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'probes' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'probes' });
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits.memory).toBeDefined();
    const state = container.volumeMounts.find((mount: Doc) => mount.mountPath === env.OPKIT_STATE_DIR);
    expect(pod.volumes.find((volume: Doc) => volume.name === state.name).emptyDir).toBeDefined();
  });
});

describe('deploy/rbac.yaml', () => {
  const docs = read('rbac.yaml');

  it('grants only the verbs the operator uses', () => {
    const clusterRole = docs.find((doc) => doc.kind === 'ClusterRole') as Doc;
    expect(clusterRole.rules).toEqual([
      {
        apiGroups: ['networking.digitalocean.com'],
        resources: ['staticroutes'],
        verbs: ['get', 'list', 'watch', 'patch'],
      },
      { apiGroups: ['networking.digitalocean.com'], resources: ['staticroutes/status'], verbs: ['patch'] },
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
    ]);
    const role = docs.find((doc) => doc.kind === 'Role') as Doc;
    expect(role.metadata.namespace).toBe('default');
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }]);
  });
});

describe('deploy/release', () => {
  it('is exactly what deploy/generate-release.sh makes of the parts', () => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'sr-release-'));
    try {
      cpSync(path.join(REPO_DIR, 'deploy'), scratch, { recursive: true });
      execFileSync('bash', [path.join(scratch, 'generate-release.sh')], { stdio: 'ignore' });
      const file = 'release/k8s-staticroute-operator-v1.0.0.yaml';
      expect(readFileSync(path.join(REPO_DIR, 'deploy', file), 'utf8')).toBe(
        readFileSync(path.join(scratch, file), 'utf8'),
      );
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('holds the CRD first (uninstall order), then the namespace, RBAC and the DaemonSet', () => {
    expect(read('release/k8s-staticroute-operator-v1.0.0.yaml').map((doc) => doc.kind)).toEqual([
      'CustomResourceDefinition',
      'Namespace',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'DaemonSet',
    ]);
  });
});
