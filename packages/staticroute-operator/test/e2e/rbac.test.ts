/**
 * Least privilege, split by role, with exactly the shipped RBAC (deploy/rbac.yaml) and admission policy
 * (deploy/admission-policy.yaml), as the release installs them:
 * - the node agent (ServiceAccount k8s-staticroute-operator, token bound to a Pod on its node) programs routes and
 *   writes its own report; it cannot write a StaticRoute (RBAC), nor another node's report, nor any report with a
 *   token that names no node (the admission policy);
 * - the aggregator (ServiceAccount k8s-staticroute-aggregator) holds the finalizer, writes the summary, posts Events,
 *   holds its Lease and guards the uninstall; it cannot write a report, nor create, replace or delete a StaticRoute;
 * - what RBAC cannot express is shown, not hidden: RBAC has no field-level rules, so the aggregator's `patch` on
 *   StaticRoutes (for the finalizer) also authorizes a spec patch, and the agent may read every node's report;
 * - every verb of every rule bound to either ServiceAccount is needed: with that one verb removed from the shipped role
 *   (the rule split if it names several resources), the component runs into the API server's refusal and something
 *   visible breaks. A rule added to deploy/rbac.yaml without a case here fails the suite.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { SimNode } from '@opkit/testbed';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { REPO_DIR } from '../support/build.js';
import {
  AGENT_SERVICE_ACCOUNT,
  AGGREGATOR_SERVICE_ACCOUNT,
  E2eCluster,
  eventually,
  GATEWAY_A,
  GATEWAY_B,
  ourRoutes,
  type AggregatorProcess,
  type OperatorProcess,
} from './support/cluster.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

interface RoleDoc {
  kind: 'ClusterRole' | 'Role';
  metadata: { name: string; namespace?: string };
  rules: Rule[];
}

interface BindingDoc {
  kind: 'ClusterRoleBinding' | 'RoleBinding';
  metadata: { name: string; namespace?: string };
  roleRef: { kind: string; name: string };
  subjects: Array<{ kind: string; name: string; namespace?: string }>;
}

const NAMESPACE = 'static-routes';
const AGGREGATOR_FINALIZER = 'aggregator.staticroute.opkit.dev/routes';
const UNINSTALL_FINALIZER = 'aggregator.staticroute.opkit.dev/uninstall';
const UNINSTALL_BINDING = 'k8s-staticroute-aggregator-uninstall';
const LEASE = 'k8s-staticroute-aggregator';
const POLICY = 'k8s-staticroute-operator-own-report';
const REPORTS = 'staticroutenodestatuses';
const GROUP = 'networking.digitalocean.com';

const RBAC_DOCUMENTS = parseAllDocuments(readFileSync(path.join(REPO_DIR, 'deploy/rbac.yaml'), 'utf8')).map(
  (document) => document.toJS() as { kind: string },
);
const ROLES = RBAC_DOCUMENTS.filter((doc): doc is RoleDoc => doc.kind === 'ClusterRole' || doc.kind === 'Role');
const BINDINGS = RBAC_DOCUMENTS.filter(
  (doc): doc is BindingDoc => doc.kind === 'ClusterRoleBinding' || doc.kind === 'RoleBinding',
);

/** The roles deploy/rbac.yaml binds to a ServiceAccount of the release. */
function rolesOf(serviceAccount: string): RoleDoc[] {
  return BINDINGS.filter((binding) =>
    binding.subjects.some((subject) => subject.kind === 'ServiceAccount' && subject.name === serviceAccount),
  ).map((binding) => {
    const namespace = binding.kind === 'RoleBinding' ? binding.metadata.namespace : undefined;
    const role = ROLES.find(
      (candidate) =>
        candidate.kind === binding.roleRef.kind &&
        candidate.metadata.name === binding.roleRef.name &&
        candidate.metadata.namespace === namespace,
    );
    if (!role)
      throw new Error(`deploy/rbac.yaml binds ${binding.roleRef.kind} ${binding.roleRef.name}, not in the file`);
    return role;
  });
}

/** One verb on one resource granted by one rule of a shipped role: the unit whose removal must break something. */
interface Permission {
  role: RoleDoc;
  ruleIndex: number;
  resource: string;
  verb: string;
  /** `<resource>:<verb>`, the key of the symptom tables below. */
  key: string;
}

function permissionsOf(serviceAccount: string): Permission[] {
  return rolesOf(serviceAccount).flatMap((role) =>
    role.rules.flatMap((rule, ruleIndex) =>
      rule.resources.flatMap((resource) =>
        rule.verbs.map((verb) => ({ role, ruleIndex, resource, verb, key: `${resource}:${verb}` })),
      ),
    ),
  );
}

/** The role's rules without `permission` (its rule split into the other resources and the other verbs). */
function rulesWithout(permission: Permission): Rule[] {
  return permission.role.rules.flatMap((rule, index) => {
    if (index !== permission.ruleIndex) return [rule];
    const others = rule.resources.filter((resource) => resource !== permission.resource);
    const verbs = rule.verbs.filter((verb) => verb !== permission.verb);
    return [
      ...(others.length > 0 ? [{ ...rule, resources: others }] : []),
      ...(verbs.length > 0 ? [{ ...rule, resources: [permission.resource], verbs }] : []),
    ];
  });
}

// Two nodes (one report each, so that "another node's report" is a real one). Agents and aggregators are started by
// the tests; nothing is cleaned up between them but what each one made.
const cluster = E2eCluster.forSuite({ nodes: 2, operators: false, aggregator: false, cleanAfterEach: false });

function roleArgs(role: RoleDoc): string[] {
  return [
    role.kind.toLowerCase(),
    role.metadata.name,
    ...(role.metadata.namespace ? ['-n', role.metadata.namespace] : []),
  ];
}

/** Replaces the rules of a shipped role in the cluster. */
async function setRules(role: RoleDoc, rules: Rule[]): Promise<void> {
  const result = await cluster.kubectl([
    'patch',
    ...roleArgs(role),
    '--type=json',
    '-p',
    JSON.stringify([{ op: 'replace', path: '/rules', value: rules }]),
  ]);
  expect(result.code, result.stderr).toBe(0);
}

/** `kubectl auth can-i` as the ServiceAccount for `permission` (resourceNames and subresources included). */
async function canI(serviceAccount: string, permission: Permission): Promise<boolean> {
  const rule = permission.role.rules[permission.ruleIndex]!;
  const [resource, subresource] = permission.resource.split('/') as [string, string | undefined];
  const group = rule.apiGroups[0] ? `.${rule.apiGroups[0]}` : '';
  const name = rule.resourceNames?.[0] ? `/${rule.resourceNames[0]}` : '';
  const result = await cluster.kubectl([
    'auth',
    'can-i',
    permission.verb,
    `${resource}${group}${name}`,
    ...(subresource ? [`--subresource=${subresource}`] : []),
    ...(permission.role.metadata.namespace ? ['-n', permission.role.metadata.namespace] : []),
    `--as=system:serviceaccount:${NAMESPACE}:${serviceAccount}`,
  ]);
  return result.stdout.trim() === 'yes';
}

/** Waits until the API server's authorizer has taken a role change in (its RBAC view is fed by a watch). */
async function untilAuthorizer(serviceAccount: string, permission: Permission, allowed: boolean): Promise<void> {
  await eventually(
    async () => (await canI(serviceAccount, permission)) === allowed,
    `${serviceAccount} to be ${allowed ? 'allowed' : 'refused'} ${permission.key}`,
  );
}

/** A log line with the API server's refusal of `verb` on `resource` (its message names both). */
function refusalIn(logs: string, verb: string, resource: string): string | undefined {
  return logs.split('\n').find((line) => line.includes(`cannot ${verb} resource \\"${resource}\\"`));
}

async function waitForRefusal(logs: () => string, verb: string, resource: string): Promise<string> {
  return eventually(() => refusalIn(logs(), verb, resource), `the refusal of ${verb} on ${resource} in the log`);
}

const SR_PATH = `/apis/${GROUP}/v1/staticroutes`;
const REPORTS_PATH = `/apis/${GROUP}/v1/${REPORTS}`;

/** An API answer as a caller sees it. */
interface Answer {
  status: number;
  message: string;
}

/**
 * One request with another identity's token, straight to the API server (no kubectl: `kubectl patch` reads the object
 * first, so its refusal could be of the `get`). A body is sent as a merge patch for PATCH, as JSON otherwise.
 */
function requestAs(token: string, method: string, apiPath: string, body?: unknown): Promise<Answer> {
  const { server, caPem } = cluster.controlPlane;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = https.request(
      new URL(apiPath, server),
      {
        method,
        ca: caPem,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload === undefined
            ? {}
            : { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' }),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          let message = text;
          try {
            message = (JSON.parse(text) as { message?: string }).message ?? text;
          } catch {
            // not JSON: the text itself
          }
          resolve({ status: response.statusCode ?? 0, message });
        });
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

/** Expects RBAC to refuse the request: 403, naming the ServiceAccount, the verb and the resource. */
function expectForbidden(answer: Answer, serviceAccount: string, verb: string, resource: string, what: string): void {
  expect(answer.status, `${what}: ${answer.message}`).toBe(403);
  expect(answer.message, what).toContain(
    `User "system:serviceaccount:${NAMESPACE}:${serviceAccount}" cannot ${verb} resource "${resource}"`,
  );
}

/** The admission policy's denial of a write to `node`'s report. */
function policyDenial(node: string): string {
  return `ValidatingAdmissionPolicy '${POLICY}' with binding '${POLICY}' denied request: a node agent may write only its own node report: this token is not bound to a pod on node ${node}`;
}

/** A Kubernetes object as JSON, from `kubectl get -o json` as admin. */
async function getJson<T>(args: string[]): Promise<T | undefined> {
  const result = await cluster.kubectl(['get', ...args, '-o', 'json', '--ignore-not-found']);
  return result.stdout.trim() === '' ? undefined : (JSON.parse(result.stdout) as T);
}

interface Meta {
  metadata: { name: string; resourceVersion: string; finalizers?: string[]; managedFields?: ManagedField[] };
}
interface ManagedField {
  manager: string;
  operation: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

/** Deletes a StaticRoute whatever holds it (as admin: finalizers stripped first). */
async function removeStaticRoute(name: string): Promise<void> {
  await cluster.kubectl(['patch', 'sr', name, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
  await cluster.kubectl(['delete', 'sr', name, '--ignore-not-found', '--wait=false']);
  await cluster.waitGone(name);
}

/** The route every node must install (and the agents report Applied). */
const ROUTE = { name: 'rbac-route', spec: { destinations: ['198.51.100.80'], gateway: GATEWAY_A } };
/** Refused on every node (the metadata address): the aggregator posts a Warning Event for it. */
const REFUSED = { name: 'rbac-refused', spec: { destinations: ['169.254.169.254'], gateway: GATEWAY_A } };

/** StaticRoutes made by a test (removed by its clean-up). */
const made: string[] = [];
let serial = 0;
function fresh(prefix: string): string {
  serial++;
  const name = `${prefix}-${serial}`;
  made.push(name);
  return name;
}

async function cleanMade(): Promise<void> {
  for (const name of made.splice(0)) await removeStaticRoute(name);
}

beforeAll(async () => {
  await cluster.apply(cluster.staticRoute(ROUTE.name, ROUTE.spec));
  await cluster.apply(cluster.staticRoute(REFUSED.name, REFUSED.spec));
});

// ---------------------------------------------------------------------------------------------------------------
// The node agent
// ---------------------------------------------------------------------------------------------------------------

/** A token of the agents' ServiceAccount, bound to a Pod on `node` (as the kubelet's projected token is) or not. */
function agentToken(node: SimNode, bound = true): Promise<string> {
  return cluster.controlPlane.mintToken(NAMESPACE, AGENT_SERVICE_ACCOUNT, {
    expirationSeconds: 3600,
    ...(bound ? { boundToPodOnNode: node.name } : {}),
  });
}

/** A report as a create sends it. */
function reportBody(name: string): object {
  return { apiVersion: `${GROUP}/v1`, kind: 'StaticRouteNodeStatus', metadata: { name } };
}

/** The aggregator's summary of `name` names `node` among the nodes that have not reported. */
async function summaryWaitsFor(name: string, node: SimNode): Promise<void> {
  await eventually(async () => {
    const object = await cluster.getStaticRoute(name);
    return object?.status?.notReady?.some(
      (group) =>
        group.state === 'Pending' &&
        group.message === 'no agent has reported from this node' &&
        group.nodes.includes(node.name),
    );
  }, `the summary of ${name} to show ${node.name} without a report`);
}

/** Deletes a node's report (as admin). */
async function deleteReport(node: SimNode): Promise<void> {
  await cluster.kubectl(['delete', REPORTS, node.name, '--ignore-not-found']);
}

describe('the node agent', () => {
  const agentsStarted: OperatorProcess[] = [];
  let aggregator: AggregatorProcess | undefined;

  beforeAll(async () => {
    aggregator = await cluster.startAggregator();
  });

  afterAll(async () => {
    await aggregator?.stop();
  });

  afterEach(async () => {
    await Promise.all(agentsStarted.splice(0).map((agent) => agent.stop()));
    cluster.operators.clear();
    await cleanMade();
  });

  it('with exactly its shipped rules and a token bound to a Pod on its node: routes programmed, its own report written', async () => {
    for (const node of cluster.nodes) agentsStarted.push(await cluster.startOperator(node));
    for (const node of cluster.nodes) await cluster.waitReady(node);
    for (const node of cluster.nodes) {
      await eventually(
        async () => JSON.stringify(await ourRoutes(node)) === JSON.stringify([`198.51.100.80/32 via ${GATEWAY_A}`]),
        `${node.name} to hold the route`,
      );
    }
    const object = await eventually(async () => {
      const current = await cluster.getStaticRoute(ROUTE.name);
      return current?.status?.ready === '2/2' ? current : undefined;
    }, 'READY 2/2');
    for (const node of cluster.nodes) {
      expect(await cluster.nodeEntry(node, ROUTE.name)).toMatchObject({
        uid: object.metadata.uid,
        generation: object.metadata.generation,
        state: 'Applied',
        routes: 1,
      });
      expect((await cluster.nodeEntry(node, REFUSED.name))?.state).toBe('Refused');
      // Written by the agent, as itself, and by nobody else.
      const report = await getJson<Meta>([REPORTS, node.name, '--show-managed-fields']);
      expect(report?.metadata.managedFields?.map((field) => field.manager)).toEqual([AGENT_SERVICE_ACCOUNT]);
    }
  });

  it('cannot write a StaticRoute: finalizers, spec, status, create, replace and delete are refused by RBAC', async () => {
    const token = await agentToken(cluster.nodes[0]!);
    const stored = await cluster.getStaticRoute(ROUTE.name);
    const object = `${SR_PATH}/${ROUTE.name}`;
    const attempts: Array<[string, string, unknown, string, string]> = [
      ['PATCH', object, { metadata: { finalizers: ['example.com/mine'] } }, 'patch', 'staticroutes'],
      ['PATCH', object, { spec: { gateway: GATEWAY_B } }, 'patch', 'staticroutes'],
      ['PATCH', `${object}/status`, { status: { ready: '9/9' } }, 'patch', 'staticroutes/status'],
      ['PUT', object, stored, 'update', 'staticroutes'],
      ['POST', SR_PATH, cluster.staticRoute('rbac-by-agent', ROUTE.spec), 'create', 'staticroutes'],
      ['DELETE', object, undefined, 'delete', 'staticroutes'],
    ];
    for (const [method, apiPath, body, verb, resource] of attempts) {
      const answer = await requestAs(token, method, apiPath, body);
      expectForbidden(answer, AGENT_SERVICE_ACCOUNT, verb, resource, `${method} ${apiPath}`);
    }
    expect((await cluster.getStaticRoute(ROUTE.name))?.metadata.resourceVersion).toBe(stored?.metadata.resourceVersion);
    expect(await cluster.getStaticRoute('rbac-by-agent')).toBeUndefined();
  });

  it("cannot write another node's report: the admission policy denies it, naming the node", async () => {
    const [node1, node2] = cluster.nodes as [SimNode, SimNode];
    // Both reports exist (the first test's agents wrote them).
    const other = await eventually(() => getJson<Meta>([REPORTS, node2.name]), `${node2.name}'s report`);
    const token = await agentToken(node1);
    const forget = { status: { staticRoutes: { [ROUTE.name]: null } } };

    const patched = await requestAs(token, 'PATCH', `${REPORTS_PATH}/${node2.name}`, forget);
    expect(patched.status, patched.message).toBe(403);
    expect(patched.message).toContain(policyDenial(node2.name));
    const created = await requestAs(token, 'POST', REPORTS_PATH, reportBody('node-99'));
    expect(created.status, created.message).toBe(403);
    expect(created.message).toContain(policyDenial('node-99'));
    expect((await getJson<Meta>([REPORTS, node2.name]))?.metadata.resourceVersion).toBe(other.metadata.resourceVersion);
    expect(await getJson<Meta>([REPORTS, 'node-99'])).toBeUndefined();

    // The same write to its own report is admitted (a server-side dry run): the denial is about the node.
    const own = await requestAs(token, 'PATCH', `${REPORTS_PATH}/${node1.name}?dryRun=All`, forget);
    expect(own.status, own.message).toBe(200);
    // Deleting or replacing even its own report is not in its role.
    const deleted = await requestAs(token, 'DELETE', `${REPORTS_PATH}/${node1.name}?dryRun=All`);
    expectForbidden(deleted, AGENT_SERVICE_ACCOUNT, 'delete', REPORTS, 'DELETE its own report');
    const stored = await getJson<object>([REPORTS, node1.name]);
    const replaced = await requestAs(token, 'PUT', `${REPORTS_PATH}/${node1.name}?dryRun=All`, stored);
    expectForbidden(replaced, AGENT_SERVICE_ACCOUNT, 'update', REPORTS, 'PUT its own report');
  });

  it('with a token bound to no Pod (no node in it): no report can be created or written, so the agent cannot report', async () => {
    const node = cluster.nodes[0]!;
    const unbound = await agentToken(node, false);
    const patched = await requestAs(unbound, 'PATCH', `${REPORTS_PATH}/${node.name}`, {
      status: { staticRoutes: { [ROUTE.name]: null } },
    });
    expect(patched.status, patched.message).toBe(403);
    expect(patched.message).toContain(policyDenial(node.name));
    await deleteReport(node);
    const created = await requestAs(unbound, 'POST', REPORTS_PATH, reportBody(node.name));
    expect(created.status, created.message).toBe(403);
    expect(created.message).toContain(policyDenial(node.name));

    // The agent itself, started with such a token: RBAC lets it read and it programs the routes, but its report is
    // refused, so the aggregator shows the node as not reporting.
    const agent = await cluster.startOperator(node, { kubeconfig: await cluster.network.nodeKubeconfig(unbound) });
    agentsStarted.push(agent);
    await cluster.waitReady(node);
    await eventually(async () => (await ourRoutes(node)).length === 1, `${node.name} to hold the route`);
    const refused = await eventually(
      () =>
        agent
          .logs()
          .split('\n')
          .find((line) => line.includes('cannot write the report')),
      'the refused report write in the log',
    );
    expect(refused).toContain(`this token is not bound to a pod on node ${node.name}`);
    expect(await cluster.nodeReport(node)).toBeUndefined();
    await summaryWaitsFor(ROUTE.name, node);
  });

  it('what RBAC cannot express, stated: it may read any node report, and write all of its own (metadata too)', async () => {
    const [node1, node2] = cluster.nodes as [SimNode, SimNode];
    // node-1's report was deleted by the previous test: an agent with the shipped token writes it again.
    agentsStarted.push(await cluster.startOperator(node1));
    await eventually(() => cluster.nodeEntry(node1, ROUTE.name), `${node1.name}'s report`);
    const token = await agentToken(node1);
    // A `get` cannot be limited to a name RBAC does not know in advance: every node's report is readable.
    const read = await requestAs(token, 'GET', `${REPORTS_PATH}/${node2.name}`);
    expect(read.status, read.message).toBe(200);
    // The policy ties the report's name to the node; what the agent writes into its own report is up to the agent.
    const labelled = await requestAs(token, 'PATCH', `${REPORTS_PATH}/${node1.name}?dryRun=All`, {
      metadata: { labels: { 'example.com/anything': 'yes' } },
    });
    expect(labelled.status, labelled.message).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The aggregator
// ---------------------------------------------------------------------------------------------------------------

/** The aggregator's readiness (/readyz on its probe port, named in its log): only the leader is ready. */
async function aggregatorReady(aggregator: AggregatorProcess): Promise<boolean> {
  const port = /"port":(\d+),"msg":"probe server listening"/.exec(aggregator.logs())?.[1];
  if (!port) return false;
  const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
  return response?.status === 200;
}

async function leaseHolder(): Promise<string> {
  const result = await cluster.kubectl([
    'get',
    'lease',
    LEASE,
    '-n',
    NAMESPACE,
    '-o',
    'jsonpath={.spec.holderIdentity}',
  ]);
  return result.stdout.trim();
}

/** Takes the uninstall guard's marks off (as admin), so that a new aggregator must put them back. */
async function removeGuardMarks(): Promise<void> {
  for (const target of [
    ['clusterrole', AGGREGATOR_SERVICE_ACCOUNT],
    ['serviceaccount', AGGREGATOR_SERVICE_ACCOUNT, '-n', NAMESPACE],
  ]) {
    const result = await cluster.kubectl([
      'patch',
      ...target,
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":null}}',
    ]);
    expect(result.code, result.stderr).toBe(0);
  }
  await cluster.kubectl(['delete', 'clusterrolebinding', UNINSTALL_BINDING, '--ignore-not-found']);
}

async function finalizersOf(...target: string[]): Promise<string[]> {
  return (await getJson<Meta>(target))?.metadata.finalizers ?? [];
}

/** The fields a manager owns, two levels deep (`metadata.finalizers`, `status.ready`, ...), from its managedFields. */
function ownedFields(entry: ManagedField): string[] {
  const name = (key: string) => key.replace(/^f:/, '');
  return Object.entries(entry.fieldsV1 ?? {})
    .flatMap(([top, inner]) =>
      Object.keys(inner as object)
        .filter((key) => key !== '.')
        .map((key) => `${name(top)}.${name(key)}`),
    )
    .sort();
}

describe('the aggregator', () => {
  let aggregator: AggregatorProcess | undefined;

  beforeAll(async () => {
    await cluster.startOperators();
  });

  afterEach(async () => {
    await aggregator?.stop();
    aggregator = undefined;
    await cleanMade();
  });

  it('with exactly its shipped rules: finalizer, summary, Events, Lease and the uninstall guard', async () => {
    await removeGuardMarks();
    aggregator = await cluster.startAggregator();
    await eventually(() => aggregatorReady(aggregator!), 'the aggregator to lead');
    expect(await leaseHolder()).toBe(aggregator.identity);
    const object = await eventually(async () => {
      const current = await cluster.getStaticRoute(ROUTE.name);
      return current?.status?.ready === '2/2' ? current : undefined;
    }, 'READY 2/2');
    expect(object.metadata.finalizers).toEqual([AGGREGATOR_FINALIZER]);
    const refused = await eventually(async () => {
      const current = await cluster.getStaticRoute(REFUSED.name);
      return current?.status?.ready === '0/2' ? current : undefined;
    }, `${REFUSED.name} READY 0/2`);
    expect(refused.status?.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', reason: 'Refused' }));
    await eventually(
      async () =>
        (await cluster.events(REFUSED.name)).some((event) => event.type === 'Warning' && event.reason === 'Refused'),
      'a Warning Event Refused',
    );
    // The uninstall guard (src/aggregator/uninstall-guard.ts) put its marks back.
    expect(await finalizersOf('clusterrole', AGGREGATOR_SERVICE_ACCOUNT)).toContain(UNINSTALL_FINALIZER);
    expect(await finalizersOf('serviceaccount', AGGREGATOR_SERVICE_ACCOUNT, '-n', NAMESPACE)).toContain(
      UNINSTALL_FINALIZER,
    );
    expect(await getJson<Meta>(['clusterrolebinding', UNINSTALL_BINDING])).toBeDefined();
  });

  it('cannot write a report, nor create, replace or delete a StaticRoute, nor write Nodes: refused by RBAC', async () => {
    const token = await cluster.controlPlane.mintToken(NAMESPACE, AGGREGATOR_SERVICE_ACCOUNT);
    const node = cluster.nodes[0]!;
    const stored = await cluster.getStaticRoute(ROUTE.name);
    const object = `${SR_PATH}/${ROUTE.name}`;
    const attempts: Array<[string, string, unknown, string, string]> = [
      ['POST', REPORTS_PATH, reportBody('node-98'), 'create', REPORTS],
      ['PATCH', `${REPORTS_PATH}/${node.name}`, { status: { staticRoutes: null } }, 'patch', REPORTS],
      ['DELETE', `${REPORTS_PATH}/${node.name}`, undefined, 'delete', REPORTS],
      ['GET', `${REPORTS_PATH}/${node.name}`, undefined, 'get', REPORTS],
      ['POST', SR_PATH, cluster.staticRoute('rbac-by-aggregator', ROUTE.spec), 'create', 'staticroutes'],
      ['PUT', object, stored, 'update', 'staticroutes'],
      ['DELETE', object, undefined, 'delete', 'staticroutes'],
      ['PATCH', `/api/v1/nodes/${node.name}`, { metadata: { labels: { 'example.com/x': 'y' } } }, 'patch', 'nodes'],
      ['GET', `/api/v1/namespaces/${NAMESPACE}/secrets`, undefined, 'list', 'secrets'],
    ];
    for (const [method, apiPath, body, verb, resource] of attempts) {
      const answer = await requestAs(token, method, apiPath, body);
      expectForbidden(answer, AGGREGATOR_SERVICE_ACCOUNT, verb, resource, `${method} ${apiPath}`);
    }
    expect((await cluster.getStaticRoute(ROUTE.name))?.metadata.resourceVersion).toBe(stored?.metadata.resourceVersion);
    expect(await cluster.getStaticRoute('rbac-by-aggregator')).toBeUndefined();
    expect(await getJson<Meta>([REPORTS, 'node-98'])).toBeUndefined();
  });

  it('what RBAC cannot express, stated: its patch on StaticRoutes also authorizes a spec patch; it writes only finalizers and status', async () => {
    aggregator = await cluster.startAggregator();
    await eventually(async () => (await cluster.getStaticRoute(ROUTE.name))?.status?.ready === '2/2', 'READY 2/2');
    const token = await cluster.controlPlane.mintToken(NAMESPACE, AGGREGATOR_SERVICE_ACCOUNT);
    // RBAC has no field-level rules: `patch` (needed for the finalizer) covers the whole object. A dry run: the API
    // server authorizes and admits it, and changes nothing.
    const before = await cluster.getStaticRoute(ROUTE.name);
    const specPatch = await requestAs(token, 'PATCH', `${SR_PATH}/${ROUTE.name}?dryRun=All`, {
      spec: { gateway: GATEWAY_B },
    });
    expect(specPatch.status, specPatch.message).toBe(200);
    expect((await cluster.getStaticRoute(ROUTE.name))?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion);
    // What it does write: the finalizer on the object, everything else through the status subresource.
    const object = await getJson<Meta>(['sr', ROUTE.name, '--show-managed-fields']);
    const mine = (object?.metadata.managedFields ?? []).filter((field) => field.manager === AGGREGATOR_SERVICE_ACCOUNT);
    expect(mine.length).toBeGreaterThan(0);
    for (const entry of mine) {
      if (entry.subresource === 'status')
        expect(ownedFields(entry).every((field) => field.startsWith('status'))).toBe(true);
      else expect(ownedFields(entry)).toEqual(['metadata.finalizers']);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Every verb is needed
// ---------------------------------------------------------------------------------------------------------------

/** What breaks without one permission, and how to see it. */
interface Symptom {
  /** For the test's name. */
  breaks: string;
  /** Puts the cluster where the component needs the permission (before the component starts). */
  arrange?: () => Promise<void>;
  /** Waits for the refusal and the breakage, with the component running without the permission. */
  observe: (logs: () => string) => Promise<void>;
}

/** The agent on node-1, with its shipped token. */
const agentNode = (): SimNode => cluster.nodes[0]!;

async function agentNotReady(): Promise<void> {
  const ready = await agentNode().exec(['curl', '-sf', 'http://127.0.0.1:9860/readyz'], { allowFailure: true });
  expect(ready.code, 'the agent is not ready').not.toBe(0);
}

/** An EndpointSlice of the `kubernetes` Service with an address that is not the ClusterIP, and a route capturing it. */
async function arrangeApiEndpoint(): Promise<string> {
  await cluster.apply({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'kubernetes-rbac', namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['203.0.113.77'] }],
    ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
  });
  const name = fresh('rbac-captures');
  await cluster.apply(cluster.staticRoute(name, { destinations: ['203.0.113.0/24'], gateway: GATEWAY_A }));
  return name;
}

let capturing = '';
const AGENT_SYMPTOMS: Record<string, Symptom> = {
  'staticroutes:list': {
    breaks: 'it cannot learn the StaticRoutes: not ready, no route',
    observe: async (logs) => {
      await waitForRefusal(logs, 'list', 'staticroutes');
      await agentNotReady();
      expect(await ourRoutes(agentNode())).toEqual([]);
    },
  },
  'staticroutes:watch': {
    breaks: 'it cannot follow changes',
    observe: (logs) => waitForRefusal(logs, 'watch', 'staticroutes').then(() => undefined),
  },
  'nodes:list': {
    breaks: 'it cannot learn its labels (nodeSelector): not ready, no route',
    observe: async (logs) => {
      await waitForRefusal(logs, 'list', 'nodes');
      await agentNotReady();
      expect(await ourRoutes(agentNode())).toEqual([]);
    },
  },
  'nodes:watch': {
    breaks: 'it cannot follow its label changes',
    observe: (logs) => waitForRefusal(logs, 'watch', 'nodes').then(() => undefined),
  },
  [`${REPORTS}:get`]: {
    breaks: 'it cannot read its report back: the routes are programmed, the report is never written',
    arrange: () => deleteReport(agentNode()),
    observe: async (logs) => {
      await waitForRefusal(logs, 'get', REPORTS);
      await eventually(async () => (await ourRoutes(agentNode())).length === 1, 'the route');
      expect(await cluster.nodeReport(agentNode())).toBeUndefined();
    },
  },
  [`${REPORTS}:create`]: {
    breaks: 'it cannot create its report: the aggregator sees no agent on the node',
    arrange: () => deleteReport(agentNode()),
    observe: async (logs) => {
      await waitForRefusal(logs, 'create', REPORTS);
      expect(await cluster.nodeReport(agentNode())).toBeUndefined();
      await summaryWaitsFor(ROUTE.name, agentNode());
    },
  },
  [`${REPORTS}:patch`]: {
    breaks: 'it cannot write its outcomes into its report',
    arrange: async () => {
      // An empty report, as a fresh node would have after its first write.
      await deleteReport(agentNode());
      await cluster.apply({
        apiVersion: `${GROUP}/v1`,
        kind: 'StaticRouteNodeStatus',
        metadata: { name: agentNode().name },
      });
    },
    observe: async (logs) => {
      await waitForRefusal(logs, 'patch', REPORTS);
      expect(await cluster.nodeEntry(agentNode(), ROUTE.name)).toBeUndefined();
    },
  },
  'endpointslices:list': {
    breaks: "it cannot learn the API server's endpoints: a route capturing one is installed instead of refused",
    arrange: async () => {
      capturing = await arrangeApiEndpoint();
    },
    observe: async (logs) => {
      await waitForRefusal(logs, 'list', 'endpointslices');
      await eventually(
        async () => (await ourRoutes(agentNode())).includes(`203.0.113.0/24 via ${GATEWAY_A}`),
        'the capturing route to be installed',
        30_000,
      );
      await eventually(
        async () => (await cluster.nodeEntry(agentNode(), capturing))?.state === 'Applied',
        'the capturing route reported Applied (with the endpoints known it is Refused)',
      );
    },
  },
  'endpointslices:watch': {
    breaks: "it cannot follow the API server's endpoints",
    observe: (logs) => waitForRefusal(logs, 'watch', 'endpointslices').then(() => undefined),
  },
};

/** A StaticRoute the running aggregator has not handled yet (created before it starts). */
let unhandled = '';
async function arrangeUnhandled(): Promise<void> {
  unhandled = fresh('rbac-new');
  await cluster.apply(cluster.staticRoute(unhandled, { destinations: ['198.51.100.81'], gateway: GATEWAY_A }));
}

/** A refused StaticRoute whose summary nobody wrote yet: its first summary posts a Warning Event. */
async function arrangeRefused(): Promise<void> {
  unhandled = fresh('rbac-refused');
  await cluster.apply(cluster.staticRoute(unhandled, REFUSED.spec));
  for (const node of cluster.nodes) {
    await eventually(
      async () => (await cluster.nodeEntry(node, unhandled))?.state === 'Refused',
      `${node.name} to refuse it`,
    );
  }
}

/** The aggregator whose role lacks a permission. */
let underTest: AggregatorProcess | undefined;

/** It does not hold the Lease (the previous aggregator released it on its way out). */
async function neverLeads(): Promise<void> {
  expect(await leaseHolder()).not.toBe(underTest?.identity);
}

/** It leads and its start completed, uninstall guard included (/readyz). */
async function leads(): Promise<void> {
  await eventually(() => underTest && aggregatorReady(underTest), 'the aggregator to lead');
}

/** The agent does all its work: ready, routes programmed and removed, its report written. */
async function agentWorks(): Promise<void> {
  const node = agentNode();
  await cluster.waitReady(node);
  for (const name of [ROUTE.name, unhandled]) {
    const object = await cluster.getStaticRoute(name);
    await eventually(async () => {
      const entry = await cluster.nodeEntry(node, name);
      return entry?.state === 'Applied' && entry.generation === object?.metadata.generation;
    }, `${node.name} to report ${name} Applied`);
  }
  expect(await ourRoutes(node)).toEqual([`198.51.100.80/32 via ${GATEWAY_A}`, `198.51.100.81/32 via ${GATEWAY_A}`]);
  await cluster.deleteStaticRoute(unhandled);
  await cluster.waitGone(unhandled);
  await eventually(
    async () => (await ourRoutes(node)).length === 1,
    `${node.name} to remove the deleted object's route`,
  );
}

/**
 * The aggregator does all its work: it leads, holds a new object's finalizer, writes its summary, guards the uninstall
 * and releases a deleted object.
 */
async function aggregatorWorks(): Promise<void> {
  await leads();
  await eventually(async () => {
    const object = await cluster.getStaticRoute(unhandled);
    return object?.metadata.finalizers?.includes(AGGREGATOR_FINALIZER) && object.status?.ready === '2/2';
  }, `${unhandled}: the finalizer and READY 2/2`);
  expect(await finalizersOf('clusterrole', AGGREGATOR_SERVICE_ACCOUNT)).toContain(UNINSTALL_FINALIZER);
  expect(await finalizersOf('serviceaccount', AGGREGATOR_SERVICE_ACCOUNT, '-n', NAMESPACE)).toContain(
    UNINSTALL_FINALIZER,
  );
  expect(await getJson<Meta>(['clusterrolebinding', UNINSTALL_BINDING])).toBeDefined();
  // And releases it once the nodes removed its routes.
  await cluster.deleteStaticRoute(unhandled);
  await cluster.waitGone(unhandled);
}

const AGGREGATOR_SYMPTOMS: Record<string, Symptom> = {
  'staticroutes:list': {
    breaks: 'it cannot learn the StaticRoutes: no finalizer, no summary',
    arrange: arrangeUnhandled,
    observe: async (logs) => {
      await waitForRefusal(logs, 'list', 'staticroutes');
      const object = await cluster.getStaticRoute(unhandled);
      expect(object?.metadata.finalizers ?? []).toEqual([]);
      expect(object?.status?.ready).toBeUndefined();
    },
  },
  'staticroutes:watch': {
    breaks: 'it cannot follow the StaticRoutes',
    observe: (logs) => waitForRefusal(logs, 'watch', 'staticroutes').then(() => undefined),
  },
  'staticroutes:patch': {
    breaks: 'it cannot hold the finalizer: a delete would not wait for the nodes',
    arrange: arrangeUnhandled,
    observe: async (logs) => {
      await waitForRefusal(logs, 'patch', 'staticroutes');
      expect((await cluster.getStaticRoute(unhandled))?.metadata.finalizers ?? []).toEqual([]);
    },
  },
  'staticroutes/status:patch': {
    breaks: 'it cannot write the summary: READY stays empty',
    arrange: arrangeUnhandled,
    observe: async (logs) => {
      await waitForRefusal(logs, 'patch', 'staticroutes/status');
      await eventually(
        async () => (await cluster.getStaticRoute(unhandled))?.metadata.finalizers?.includes(AGGREGATOR_FINALIZER),
        'the finalizer (its patch is allowed)',
      );
      expect((await cluster.getStaticRoute(unhandled))?.status?.ready).toBeUndefined();
    },
  },
  'nodes:list': {
    breaks: 'it cannot tell which nodes an object selects',
    observe: (logs) => waitForRefusal(logs, 'list', 'nodes').then(() => undefined),
  },
  'nodes:watch': {
    breaks: 'it cannot follow Nodes',
    observe: (logs) => waitForRefusal(logs, 'watch', 'nodes').then(() => undefined),
  },
  [`${REPORTS}:list`]: {
    breaks: "it cannot read the nodes' reports",
    observe: (logs) => waitForRefusal(logs, 'list', REPORTS).then(() => undefined),
  },
  [`${REPORTS}:watch`]: {
    breaks: "it cannot follow the nodes' reports",
    observe: (logs) => waitForRefusal(logs, 'watch', REPORTS).then(() => undefined),
  },
  'leases:get': {
    breaks: 'it cannot read its Lease: it never leads',
    observe: async (logs) => {
      await waitForRefusal(logs, 'get', 'leases');
      await neverLeads();
    },
  },
  'leases:patch': {
    breaks: 'it cannot take or renew its Lease: it never leads',
    observe: async (logs) => {
      await waitForRefusal(logs, 'patch', 'leases');
      await neverLeads();
    },
  },
  'leases:create': {
    breaks: 'it cannot create its Lease on a fresh install: it never leads',
    arrange: async () => {
      await cluster.kubectl(['delete', 'lease', LEASE, '-n', NAMESPACE, '--ignore-not-found']);
    },
    observe: async (logs) => {
      await waitForRefusal(logs, 'create', 'leases');
      expect(await getJson<Meta>(['lease', LEASE, '-n', NAMESPACE])).toBeUndefined();
    },
  },
  'customresourcedefinitions:get': {
    breaks: 'it cannot notice an uninstall, so it would never let its rights go',
    observe: (logs) => waitForRefusal(logs, 'get', 'customresourcedefinitions').then(() => undefined),
  },
  'clusterroles:get': {
    breaks: 'the uninstall guard cannot protect its ClusterRole, nor bind it a second time',
    arrange: removeGuardMarks,
    observe: async () => {
      await leads();
      expect(await finalizersOf('clusterrole', AGGREGATOR_SERVICE_ACCOUNT)).not.toContain(UNINSTALL_FINALIZER);
      expect(await getJson<Meta>(['clusterrolebinding', UNINSTALL_BINDING])).toBeUndefined();
    },
  },
  'clusterroles:patch': {
    breaks: 'the uninstall guard cannot put its finalizer on its ClusterRole',
    arrange: removeGuardMarks,
    observe: async () => {
      await leads();
      expect(await finalizersOf('clusterrole', AGGREGATOR_SERVICE_ACCOUNT)).not.toContain(UNINSTALL_FINALIZER);
      // The rest of the guard worked: only this one right was missing.
      expect(await finalizersOf('serviceaccount', AGGREGATOR_SERVICE_ACCOUNT, '-n', NAMESPACE)).toContain(
        UNINSTALL_FINALIZER,
      );
    },
  },
  'clusterrolebindings:create': {
    breaks: 'the uninstall guard cannot create its second binding',
    arrange: removeGuardMarks,
    observe: async () => {
      await leads();
      expect(await getJson<Meta>(['clusterrolebinding', UNINSTALL_BINDING])).toBeUndefined();
    },
  },
  'serviceaccounts:get': {
    breaks: 'the uninstall guard cannot protect its ServiceAccount',
    arrange: removeGuardMarks,
    observe: async () => {
      await leads();
      expect(await finalizersOf('serviceaccount', AGGREGATOR_SERVICE_ACCOUNT, '-n', NAMESPACE)).not.toContain(
        UNINSTALL_FINALIZER,
      );
    },
  },
  'serviceaccounts:patch': {
    breaks: 'the uninstall guard cannot put its finalizer on its ServiceAccount',
    arrange: removeGuardMarks,
    observe: async () => {
      await leads();
      expect(await finalizersOf('serviceaccount', AGGREGATOR_SERVICE_ACCOUNT, '-n', NAMESPACE)).not.toContain(
        UNINSTALL_FINALIZER,
      );
      expect(await finalizersOf('clusterrole', AGGREGATOR_SERVICE_ACCOUNT)).toContain(UNINSTALL_FINALIZER);
    },
  },
  'events:create': {
    breaks: 'its Events are not posted',
    arrange: arrangeRefused,
    observe: async (logs) => {
      await waitForRefusal(logs, 'create', 'events');
      expect(await cluster.events(unhandled)).toEqual([]);
    },
  },
  'events:patch': {
    breaks: 'a repeated Event is not counted',
    arrange: arrangeRefused,
    observe: async (logs) => {
      // Refused (a Warning created), fixed (a Normal one created), refused again: the same Warning, counted by a patch.
      await eventually(
        async () => (await cluster.events(unhandled)).some((event) => event.reason === 'Refused'),
        'the Warning',
      );
      const patch = (spec: object) =>
        cluster.kubectl(['patch', 'sr', unhandled, '--type=merge', '-p', JSON.stringify({ spec })]);
      await patch({ destinations: ['198.51.100.82'] });
      await eventually(
        async () => (await cluster.events(unhandled)).some((event) => event.reason === 'Ready'),
        'Ready',
      );
      await patch({ destinations: REFUSED.spec.destinations });
      await waitForRefusal(logs, 'patch', 'events');
      const warnings = (await cluster.events(unhandled)).filter((event) => event.reason === 'Refused');
      expect(warnings.map((event) => event.count ?? 1)).toEqual([1]);
    },
  },
};

describe('every verb of every rule is needed', () => {
  let changed: { serviceAccount: string; permission: Permission } | undefined;
  let agentUnderTest: OperatorProcess | undefined;

  afterEach(async () => {
    await agentUnderTest?.stop();
    agentUnderTest = undefined;
    await underTest?.stop();
    underTest = undefined;
    if (changed) {
      await setRules(changed.permission.role, changed.permission.role.rules);
      await untilAuthorizer(changed.serviceAccount, changed.permission, true);
      changed = undefined;
    }
    await cluster.kubectl(['delete', 'endpointslice', 'kubernetes-rbac', '-n', 'default', '--ignore-not-found']);
    await cleanMade();
  });

  /**
   * Starts a component with `permission` taken out of its shipped role, and waits for the symptom. A permission
   * without a known symptom is tried too: the component then does all its work (`worksWithout`) and the test fails
   * saying that the permission is not needed.
   */
  async function without(
    serviceAccount: string,
    permission: Permission,
    symptom: Symptom | undefined,
    start: () => Promise<{ logs: () => string }>,
    worksWithout: { arrange?: () => Promise<void>; check: () => Promise<void> },
  ): Promise<void> {
    await setRules(permission.role, rulesWithout(permission));
    changed = { serviceAccount, permission };
    await untilAuthorizer(serviceAccount, permission, false);
    if (!symptom) {
      await worksWithout.arrange?.();
      const running = await start();
      await worksWithout.check();
      expect(refusalIn(running.logs(), permission.verb, permission.resource), 'a refusal in the log').toBeUndefined();
      expect.fail(
        `${serviceAccount} does all its work without ${permission.verb} on ${permission.resource}: the permission is ` +
          `not needed (deploy/rbac.yaml, ${permission.role.kind} ${permission.role.metadata.name})`,
      );
    }
    await symptom.arrange?.();
    const running = await start();
    await symptom.observe(() => running.logs());
  }

  const title = (permission: Permission, symptom: Symptom | undefined) =>
    `without ${permission.verb} on ${permission.resource} (${permission.role.kind} ${permission.role.metadata.name}): ${symptom?.breaks ?? 'nothing known breaks'}`;

  describe(`the agent (${AGENT_SERVICE_ACCOUNT}, on one node; the aggregator runs with its shipped rules)`, () => {
    beforeAll(async () => {
      await cluster.stopOperators();
      await cluster.stopAggregators();
      await cluster.startAggregator();
    });

    afterAll(async () => {
      await cluster.stopAggregators();
    });

    for (const permission of permissionsOf(AGENT_SERVICE_ACCOUNT)) {
      const symptom = AGENT_SYMPTOMS[permission.key];
      it(title(permission, symptom), () =>
        without(
          AGENT_SERVICE_ACCOUNT,
          permission,
          symptom,
          async () => {
            // Routes outlive agents: the table starts empty, so that a route can only come from this agent.
            await agentNode().exec(['ip', 'route', 'flush', 'proto', '201']);
            agentUnderTest = await cluster.startOperator(agentNode());
            return agentUnderTest;
          },
          { arrange: arrangeUnhandled, check: agentWorks },
        ),
      );
    }
  });

  describe(`the aggregator (${AGGREGATOR_SERVICE_ACCOUNT}; the agents run with their shipped rules)`, () => {
    beforeAll(async () => {
      await cluster.stopAggregators();
      await cluster.stopOperators();
      await cluster.startOperators();
    });

    for (const permission of permissionsOf(AGGREGATOR_SERVICE_ACCOUNT)) {
      const symptom = AGGREGATOR_SYMPTOMS[permission.key];
      it(title(permission, symptom), () =>
        without(
          AGGREGATOR_SERVICE_ACCOUNT,
          permission,
          symptom,
          async () => {
            underTest = await cluster.startAggregator();
            return underTest;
          },
          {
            arrange: async () => {
              await removeGuardMarks();
              await arrangeUnhandled();
            },
            check: aggregatorWorks,
          },
        ),
      );
    }
  });
});
