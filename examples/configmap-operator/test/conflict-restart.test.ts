/**
 * The operator's edges against a real API server: the start-up preflight (missing CRD, missing RBAC), a foreign
 * ConfigMap in the way (temporary failure, retried until it is removed; never deleted by us), and restarts
 * (resume without re-rendering; repair of what changed while the operator was down).
 *
 * What was deleted while the operator was down is not a change the ConfigMap watch delivers (it is not in the
 * first list), so whatever gets repaired after a restart was repaired by `@OnResume`, not by `@OnSecondary`. A
 * resume that finds the ConfigMap in sync writes nothing, not even a
 * `status.handlers.resume` entry (opkit records a plain success only when there is something else to write), so
 * which handlers ran is read from the operator's metrics (`opkit_handler_runs_total`).
 */
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { startOperator, waitFor, type OperatorHandle } from 'opkit/testing';
import { ConfigTemplateOperator } from '../src/operator.js';
import { NAMESPACE, ready, startExampleCluster, type ExampleCluster } from './cluster.js';

vi.hoisted(() => {
  process.env.CONFIGTEMPLATE_CONFLICT_RETRY_MS = '300';
});

let cluster: ExampleCluster;
let operator: OperatorHandle | undefined;
/**
 * The operator's own writes to ConfigMaps, by verb. A no-op write leaves no trace in the API (the server keeps the
 * resourceVersion), so "did not re-render" is checked here, at the client.
 */
let configMapWrites: string[] = [];
/** Verbs that write nothing: the handlers' reads and the framework's watch of the ConfigMaps. */
const READS = new Set(['get', 'list', 'watch']);

const start = async (kubeconfigPath = cluster.operatorKubeconfig): Promise<OperatorHandle> =>
  (operator = await startOperator({
    classes: [ConfigTemplateOperator],
    kubeconfigPath,
    namespaces: [NAMESPACE],
    backoff: { initialMs: 100, maxMs: 1_000 },
    onApiRequest: (verb, ref) => {
      if (ref.plural === 'configmaps' && !READS.has(verb)) configMapWrites.push(verb);
    },
  }));
const stop = async (): Promise<void> => {
  await operator?.stop();
  operator = undefined;
};
/**
 * How many times the running operator ran a handler successfully since it started (`opkit_handler_runs_total`; a
 * restarted operator starts counting from zero).
 */
const successfulRuns = async (handlerId: string): Promise<number> => {
  if (!operator) throw new Error('the operator is not running');
  const { values } = await operator.metrics.handlerRuns.get();
  return values
    .filter(({ labels }) => labels.handler === handlerId && labels.outcome === 'success')
    .reduce((sum, { value }) => sum + value, 0);
};
/** How many templates exist: after a restart, each unchanged one is resumed once. */
const templateCount = async (): Promise<number> => {
  const list = await cluster.cp.request<{ items: unknown[] }>(
    'GET',
    `/apis/examples.opkit.dev/v1/namespaces/${NAMESPACE}/configtemplates`,
  );
  return list.body.items.length;
};

beforeAll(async () => {
  cluster = await startExampleCluster();
});
afterAll(async () => {
  await stop();
  await cluster?.stop();
});

describe('preflight (@OnStartup)', () => {
  test('without the CRD the operator does not start, and says how to fix it', async () => {
    await expect(start()).rejects.toThrow(/CRD \(configtemplates\.examples\.opkit\.dev\) is not installed.*crd\.yaml/);
  });

  test('without RBAC the operator does not start, and lists every missing permission', async () => {
    await cluster.installCrd();
    const token = await cluster.cp.mintToken(NAMESPACE, 'nobody');
    const kubeconfig = await cluster.cp.writeKubeconfig({ token });
    const failure = start(kubeconfig);
    await expect(failure).rejects.toThrow(
      /RBAC: not allowed in namespace demo to get examples\.opkit\.dev\/configtemplates/,
    );
    await expect(failure).rejects.toThrow(/create events, patch events; grant the role in .*rbac\.yaml/);
  });

  test('with the role of rbac.yaml it starts', async () => {
    await start();
    expect(operator?.isReady()).toBe(true);
  });
});

describe('a ConfigMap that is not ours (TemporaryError)', () => {
  test('blocks the rendering, which is retried until the ConfigMap is removed', async () => {
    await cluster.createConfigMap('shared', { owner: 'someone else' });
    const template = await cluster.createTemplate('claims', { targetName: 'shared', data: { k: 'mine' } });

    const blocked = await waitFor(async () => {
      const current = await cluster.template('claims');
      const render = current?.status?.handlers?.render;
      return render?.outcome === 'retrying' && render.retries >= 2 && current;
    });
    expect(blocked.status?.handlers?.render?.message).toContain('ConfigMap shared already exists and is not owned');
    expect(ready(blocked)).toMatchObject({ status: 'False', reason: 'Conflict' });
    // One Conflict warning for the conflict, however many retries. Events are posted in order, so once the
    // framework's HandlerRetrying event counts the second retry, any Conflict record of that retry was posted too
    // (as a second Event, or as a repeat counted on the first).
    await waitFor(async () =>
      (await cluster.events(template.metadata.uid)).some(
        (event) => event.reason === 'HandlerRetrying' && (event.count ?? 1) >= 2,
      ),
    );
    const warnings = (await cluster.events(template.metadata.uid)).filter((event) => event.reason === 'Conflict');
    expect(warnings).toEqual([expect.objectContaining({ type: 'Warning' })]);
    expect(warnings[0]?.count ?? 1).toBe(1);
    expect((await cluster.configMap('shared'))?.data).toEqual({ owner: 'someone else' });

    await cluster.deleteConfigMap('shared');
    const rendered = await waitFor(async () => {
      const current = await cluster.configMap('shared');
      return current?.data?.k === 'mine' && current;
    });
    expect(rendered.metadata.ownerReferences).toEqual([expect.objectContaining({ uid: template.metadata.uid })]);
    const done = await waitFor(async () => {
      const current = await cluster.template('claims');
      return current?.status?.handlers?.render?.outcome === 'success' && current;
    });
    expect(done.status?.handlers?.render?.retries).toBeGreaterThanOrEqual(2);
    expect(ready(done)).toMatchObject({ status: 'True', reason: 'Rendered' });
  });

  test('is never deleted with a template that targets it', async () => {
    await cluster.createConfigMap('precious', { keep: 'me' });
    await cluster.createTemplate('grabby', { targetName: 'precious', data: { k: 'v' } });
    await waitFor(async () => (await cluster.template('grabby'))?.status?.handlers?.render?.outcome === 'retrying');
    await cluster.deleteTemplate('grabby');
    await waitFor(async () => (await cluster.template('grabby')) === undefined);
    expect((await cluster.configMap('precious'))?.data).toEqual({ keep: 'me' });
  });
});

describe('restarts (@OnResume)', () => {
  test('an unchanged template resumes without re-rendering', async () => {
    await cluster.createTemplate('steady', { targetName: 'steady-config', values: { a: '1' }, data: { k: '{{ a }}' } });
    const before = await waitFor(async () => {
      const current = await cluster.template('steady');
      return ready(current)?.status === 'True' && current;
    });
    const configMapBefore = await waitFor(() => cluster.configMap('steady-config'));
    // No resume without a restart: this operator has seen every template since its creation.
    expect(await successfulRuns('resume')).toBe(0);

    await stop();
    configMapWrites = [];
    await start();
    // Every template (this one and the earlier tests' survivors) is resumed once.
    const templates = await templateCount();
    await waitFor(async () => (await successfulRuns('resume')) === templates);
    // The create and update handlers did not run again, and resume found nothing to write.
    expect(await successfulRuns('render')).toBe(0);
    expect(await successfulRuns('rerender')).toBe(0);
    const after = await cluster.template('steady');
    expect(after?.status).toEqual(before.status);
    expect(configMapWrites).toEqual([]);
    expect(await cluster.configMap('steady-config')).toEqual(configMapBefore);
  });

  test('a ConfigMap deleted while the operator was down is recreated on resume', async () => {
    const template = await waitFor(() => cluster.template('steady'));
    await stop();
    await cluster.deleteConfigMap('steady-config');
    configMapWrites = [];
    await start();
    const recreated = await waitFor(() => cluster.configMap('steady-config'));
    expect(recreated.data).toEqual({ k: '1' });
    // Every resume has finished (the ConfigMap writes above are all there are).
    const templates = await templateCount();
    await waitFor(async () => (await successfulRuns('resume')) === templates);
    expect(await successfulRuns('render')).toBe(0);
    expect(configMapWrites).toEqual(['create']);
    const reasons = (await cluster.events(template.metadata.uid)).map((event) => event.reason);
    expect(reasons).toContain('Recreated');
  });

  test('a change made while the operator was down is handled as an update, not a resume', async () => {
    await stop();
    await cluster.patchTemplate('steady', { spec: { values: { a: '2' } } });
    await start();
    await waitFor(async () => (await cluster.configMap('steady-config'))?.data?.k === '2');
    // The update's status write (the Ready condition's new observedGeneration) ends the template's cycle.
    const template = await waitFor(async () => {
      const current = await cluster.template('steady');
      return current?.status?.handlers?.rerender?.outcome === 'success' && current;
    });
    expect(template.status?.handlers?.rerender?.cause).toBe('update');
    expect(ready(template)).toMatchObject({ status: 'True', observedGeneration: template.metadata.generation });
    // The other templates are resumed; this one is not.
    const templates = await templateCount();
    await waitFor(async () => (await successfulRuns('resume')) >= templates - 1);
    expect(await successfulRuns('resume')).toBe(templates - 1);
    expect(await successfulRuns('rerender')).toBe(1);
  });
});
