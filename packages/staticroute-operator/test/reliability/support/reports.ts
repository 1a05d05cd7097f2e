/**
 * What the reliability tests read of the split design (docs/architecture.md, design notes §2): every node's report
 * (`StaticRouteNodeStatus`, one per node, written by that node's agent only) and the aggregator's summary on each
 * StaticRoute (`status.ready`, `observedGeneration`, `conditions`, `notReady`, and its one finalizer). One LIST of each
 * per check, whatever the object count.
 */
import type { E2eCluster, NodeEntryJson, NodeReportJson, StaticRouteJson } from '../../e2e/support/cluster.js';

/** The aggregator's finalizer, the only one on a StaticRoute of this release. */
export const AGGREGATOR_FINALIZER = 'aggregator.staticroute.opkit.dev/routes';
export const STATIC_ROUTES_API = '/apis/networking.digitalocean.com/v1/staticroutes';
export const REPORTS_API = '/apis/networking.digitalocean.com/v1/staticroutenodestatuses';

/** Every StaticRoute, by name. */
export async function listStaticRoutes(cluster: E2eCluster): Promise<Map<string, StaticRouteJson>> {
  const response = await cluster.controlPlane.request<{ items: StaticRouteJson[] }>('GET', STATIC_ROUTES_API);
  if (response.status !== 200) throw new Error(`listing StaticRoutes answered ${response.status}`);
  return new Map(response.body.items.map((item) => [item.metadata.name, item]));
}

/** Every node report, by node name. */
export async function listReports(cluster: E2eCluster): Promise<Map<string, NodeReportJson>> {
  const response = await cluster.controlPlane.request<{ items: NodeReportJson[] }>('GET', REPORTS_API);
  if (response.status !== 200) throw new Error(`listing node reports answered ${response.status}`);
  return new Map(response.body.items.map((item) => [item.metadata.name, item]));
}

/** A node's entry for a StaticRoute in a listed report. */
export function entryIn(
  reports: ReadonlyMap<string, NodeReportJson>,
  node: string,
  name: string,
): NodeEntryJson | undefined {
  return reports.get(node)?.status?.staticRoutes?.[name] ?? undefined;
}

/** The node's entry is about this object (uid) and its current generation. */
export function entryIsCurrent(entry: NodeEntryJson | undefined, object: StaticRouteJson): entry is NodeEntryJson {
  return entry !== undefined && entry.uid === object.metadata.uid && entry.generation === object.metadata.generation;
}

/**
 * Why `object` is not settled as Applied everywhere (empty when it is): the aggregator's finalizer alone, READY N/N
 * for its generation, no not-ready group, and every node's entry Applied for its uid and generation.
 */
export function appliedProblems(
  object: StaticRouteJson | undefined,
  name: string,
  nodes: readonly string[],
  reports: ReadonlyMap<string, NodeReportJson>,
): string[] {
  if (!object) return [`${name}: missing`];
  const problems: string[] = [];
  const finalizers = object.metadata.finalizers ?? [];
  if (JSON.stringify(finalizers) !== JSON.stringify([AGGREGATOR_FINALIZER])) {
    problems.push(`${name}: finalizers ${JSON.stringify(finalizers)}`);
  }
  const status = object.status;
  if (status?.ready !== `${nodes.length}/${nodes.length}` || status.observedGeneration !== object.metadata.generation) {
    problems.push(
      `${name}: ready ${status?.ready} for generation ${status?.observedGeneration} (is ${object.metadata.generation})`,
    );
  }
  if ((status?.notReady ?? []).length > 0) problems.push(`${name}: notReady ${JSON.stringify(status?.notReady)}`);
  for (const node of nodes) {
    const entry = entryIn(reports, node, name);
    if (!entryIsCurrent(entry, object) || entry.state !== 'Applied') {
      problems.push(`${name}: ${node}'s entry ${JSON.stringify(entry ?? null)}`);
    }
  }
  return problems;
}

/** Report entries of objects that no longer exist (by name and uid), as `node: name` lines. */
export function orphanEntries(
  objects: ReadonlyMap<string, StaticRouteJson>,
  reports: ReadonlyMap<string, NodeReportJson>,
  nodes: readonly string[],
): string[] {
  const orphans: string[] = [];
  for (const node of nodes) {
    for (const [name, entry] of Object.entries(reports.get(node)?.status?.staticRoutes ?? {})) {
      if (entry && objects.get(name)?.metadata.uid !== entry.uid) orphans.push(`${node}: ${name}`);
    }
  }
  return orphans;
}
