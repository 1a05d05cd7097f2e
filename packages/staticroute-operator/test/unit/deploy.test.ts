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
      // The image's file capability applies with no_new_privs too (proven by the container test).
      allowPrivilegeEscalation: false,
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
  const named = (kind: string, name: string) => docs.find((doc) => doc.kind === kind && doc.metadata.name === name);

  it('node agents read StaticRoutes and Nodes and write only node reports: never a StaticRoute', () => {
    expect(named('ClusterRole', 'k8s-staticroute-operator')?.rules).toEqual([
      { apiGroups: ['networking.digitalocean.com'], resources: ['staticroutes'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] },
      {
        apiGroups: ['networking.digitalocean.com'],
        resources: ['staticroutenodestatuses'],
        verbs: ['get', 'create', 'patch'],
      },
    ]);
    // In namespace default, the API server's EndpointSlices only (the agents post no Event and hold no Lease).
    const agentBindings = docs.filter((doc) =>
      (doc.subjects ?? []).some((subject: Doc) => subject.name === 'k8s-staticroute-operator'),
    );
    expect(agentBindings.map((doc) => doc.kind)).toEqual(['ClusterRoleBinding', 'RoleBinding']);
    expect(named('Role', 'k8s-staticroute-operator-api-endpoints')?.rules).toEqual([
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
    ]);
  });

  it('only the aggregator writes StaticRoutes (finalizer, status); it reads reports and Nodes', () => {
    const rules = named('ClusterRole', 'k8s-staticroute-aggregator')?.rules as Doc[];
    const writes = rules.filter((rule) =>
      rule.verbs.some((verb: string) => ['patch', 'update', 'create'].includes(verb)),
    );
    expect(writes.flatMap((rule) => rule.resources)).toEqual([
      'staticroutes',
      'staticroutes/status',
      'leases',
      'clusterroles',
      'clusterrolebindings',
      'serviceaccounts',
    ]);
    // Every write but creating its own extra binding is limited to named objects, StaticRoutes aside.
    for (const rule of writes.filter((rule) => !rule.resources.some((r: string) => r.startsWith('staticroutes')))) {
      if (rule.resources[0] === 'clusterrolebindings') expect(rule.verbs).toEqual(['create']);
      else expect(rule.resourceNames).toBeDefined();
    }
    expect(rules.find((rule) => rule.resources.includes('staticroutenodestatuses'))?.verbs).toEqual(['list', 'watch']);
    expect(named('Role', 'k8s-staticroute-aggregator-events')?.rules).toEqual([
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ]);
  });
});

describe('deploy/admission-policy.yaml', () => {
  it('ties a node report to the node named in the agent token', () => {
    const [policy, binding] = read('admission-policy.yaml') as [Doc, Doc];
    expect(policy.spec.matchConstraints.resourceRules[0].resources).toEqual(['staticroutenodestatuses']);
    expect(policy.spec.matchConditions[0].expression).toContain('k8s-staticroute-operator');
    expect(policy.spec.validations[0].expression).toContain("'authentication.kubernetes.io/node-name'");
    expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ['Deny'] });
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

  it('holds the CRDs first (uninstall order), then the namespace, the policy, the workloads and RBAC', () => {
    expect(read('release/k8s-staticroute-operator-v1.0.0.yaml').map((doc) => doc.kind)).toEqual([
      'CustomResourceDefinition',
      'CustomResourceDefinition',
      'Namespace',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
      'DaemonSet',
      'Deployment',
      'ServiceAccount',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'Role',
      'RoleBinding',
    ]);
  });
});
