/**
 * The benchmarks' cluster: a real control plane (testbed), test CRDs, and objects shaped like StaticRoutes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { crdWithStatus } from '../../test/integration/kube-fixtures.js';
import { benchClient, inParallel, type BenchClient, type BenchObject } from './api.js';
import { metricSum, pidsMentioning, processCpuMs } from './operator-process.js';

/** API group of every benchmark CRD. */
export const GROUP = 'bench.opkit.dev';
/**
 * The kind of a benchmark CRD: one CRD per plural (so each run starts from an empty collection), and kinds must be
 * unique within the group: `load1widgets` -> `Load1widget` (fixtures/widget-operator.mjs derives it the same way).
 */
export const kindOf = (plural: string): string => `${plural[0]!.toUpperCase()}${plural.slice(1, -1)}`;

/** A started control plane with the driver's client. */
export interface BenchCluster {
  controlPlane: ControlPlane;
  client: BenchClient;
  /** CPU time used so far by kube-apiserver and etcd, in ms. */
  controlPlaneCpuMs(): { apiServer: number; etcd: number };
  /** Installs a cluster-scoped CRD (status subresource, any spec) and waits until it is served. */
  installCrd(plural: string): Promise<void>;
  stop(): Promise<void>;
}

/** The collection path of a benchmark CRD. */
export const collectionPath = (plural: string): string => `/apis/${GROUP}/v1/${plural}`;
/** The path of one object. */
export const objectPath = (plural: string, name: string): string => `${collectionPath(plural)}/${name}`;

/** Starts a control plane (binaries cached by the testbed). */
export async function startBenchCluster(): Promise<BenchCluster> {
  const controlPlane = await startControlPlane();
  const client = benchClient(controlPlane);
  const pids = pidsMentioning(controlPlane.dir);
  const cpu = (name: string): number => {
    const pid = pids.get(name);
    return pid === undefined ? Number.NaN : processCpuMs(pid);
  };
  return {
    controlPlane,
    client,
    controlPlaneCpuMs: () => ({ apiServer: cpu('kube-apiserver'), etcd: cpu('etcd') }),
    async installCrd(plural) {
      await client.ok('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd(plural));
      for (let i = 0; ; i += 1) {
        const res = await client.request('GET', collectionPath(plural));
        if (res.status === 200) return;
        if (i > 300) throw new Error(`CRD ${plural} not served: ${res.status}`);
        await sleep(100);
      }
    },
    async stop() {
      client.close();
      await controlPlane.stop();
    },
  };
}

/** Any spec and status: the benchmarks' objects are not validated. */
const anyFields = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

function crd(plural: string): object {
  return crdWithStatus({
    group: GROUP,
    scope: 'Cluster',
    names: { plural, singular: plural.slice(0, -1), kind: kindOf(plural) },
    properties: { spec: anyFields, status: anyFields },
  });
}

/** An object the size of a typical StaticRoute (two destinations and a gateway). */
export function widget(plural: string, index: number, seq = 0): unknown {
  const a = (index >> 8) & 255;
  const b = index & 255;
  return {
    apiVersion: `${GROUP}/v1`,
    kind: kindOf(plural),
    metadata: { name: `w-${index}`, labels: { 'bench.opkit.dev/set': plural } },
    spec: { destinations: [`10.${a}.${b}.0/24`, `172.16.${a}.${b}/32`], gateway: '10.116.0.5', seq },
  };
}

/**
 * Creates `count` widgets with `parallel` creates in flight; resolves with the wall time in ms. `onCreated` is
 * called with each name right after its create returned.
 */
export async function createWidgets(
  client: BenchClient,
  plural: string,
  count: number,
  parallel: number,
  onCreated?: (name: string) => void,
): Promise<number> {
  const started = performance.now();
  await inParallel(count, parallel, async (i) => {
    await client.ok('POST', collectionPath(plural), widget(plural, i));
    onCreated?.(`w-${i}`);
  });
  return performance.now() - started;
}

/**
 * Whether the framework handled an object's create (cluster scope, default prefix `opkit.dev`): handler run,
 * finalizer and state written. The finalizer is added before the first handler; the diff-base annotation
 * (`<prefix>/last-handled-configuration`) is the cycle's last metadata write, made after the handlers succeeded. The
 * status is not checked: the framework writes a plain success only when there is something else to write (a
 * returned value, a status patch, an earlier failure or retry), so a handler that only succeeded leaves none.
 */
export function handledByOperator(object: BenchObject, prefix = 'opkit.dev'): boolean {
  return (
    (object.metadata.finalizers?.includes(`${prefix}/finalizer`) ?? false) &&
    object.metadata.annotations?.[`${prefix}/last-handled-configuration`] !== undefined
  );
}

/**
 * How many times a handler ran and succeeded, from the operator's `/metrics` text (`opkit_handler_runs_total` with
 * `outcome="success"`): how to tell that a handler ran where it leaves nothing to see on the object (node scope, or
 * a handler that returns nothing and patches no status).
 */
export function handlerSuccesses(metrics: string, handlerId: string): number {
  const lines = metrics.split('\n').filter((line) => line.includes(`handler="${handlerId}"`));
  return metricSum(lines.join('\n'), 'opkit_handler_runs_total', 'outcome="success"');
}
