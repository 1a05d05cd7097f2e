/**
 * The ConfigTemplate operator against a real API server, as its users see it: create renders the ConfigMap, an
 * update changes it, a new targetName moves it, an invalid template fails for good (status + Warning event, last
 * good ConfigMap kept), a deleted, edited or unlabelled ConfigMap is restored at once (the watch of the ConfigMaps
 * the operator owns, `@OnSecondary`), and delete removes the ConfigMap before the finalizer.
 */
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { startOperator, waitFor, type OperatorHandle } from 'opkit/testing';
import { ConfigTemplateOperator } from '../src/operator.js';
import { NAMESPACE, ready, startExampleCluster, type ExampleCluster } from './cluster.js';

// Read by the operator module when it loads (see src/tuning.ts): fast conflict retries.
vi.hoisted(() => {
  process.env.CONFIGTEMPLATE_CONFLICT_RETRY_MS = '300';
});

let cluster: ExampleCluster;
let operator: OperatorHandle | undefined;

beforeAll(async () => {
  cluster = await startExampleCluster();
  await cluster.installCrd();
  operator = await startOperator({
    classes: [ConfigTemplateOperator],
    kubeconfigPath: cluster.operatorKubeconfig,
    namespaces: [NAMESPACE],
    backoff: { initialMs: 100, maxMs: 1_000 },
  });
});
afterAll(async () => {
  await operator?.stop();
  await cluster?.stop();
});

const eventReasons = async (uid: string) => (await cluster.events(uid)).map((event) => `${event.type}/${event.reason}`);

describe('ConfigTemplate lifecycle', () => {
  test('create renders the ConfigMap, owned by the template, and reports it', async () => {
    const created = await cluster.createTemplate('web', {
      targetName: 'web-config',
      values: { host: 'db.internal', port: '5432' },
      data: { 'app.conf': 'database={{ host }}:{{port}}', 'static.txt': 'no placeholders' },
    });
    const configMap = await waitFor(() => cluster.configMap('web-config'));
    expect(configMap.data).toEqual({ 'app.conf': 'database=db.internal:5432', 'static.txt': 'no placeholders' });
    expect(configMap.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'examples.opkit.dev/v1',
        kind: 'ConfigTemplate',
        name: 'web',
        uid: created.metadata.uid,
        controller: true,
      },
    ]);
    expect(configMap.metadata.labels).toMatchObject({ 'examples.opkit.dev/config-template': 'web' });

    const template = await waitFor(async () => {
      const current = await cluster.template('web');
      return ready(current)?.status === 'True' && current;
    });
    expect(template.status?.configMap).toBe('web-config');
    expect(ready(template)).toMatchObject({ reason: 'Rendered', observedGeneration: 1 });
    expect(template.status?.handlers?.render).toMatchObject({ outcome: 'success', cause: 'create', retries: 0 });
    // The framework put its finalizer (named after our persistence prefix) before the handler ran.
    expect(template.metadata.finalizers).toEqual(['examples.opkit.dev/finalizer']);
    await waitFor(async () => (await eventReasons(created.metadata.uid)).includes('Normal/Created'));
  });

  test('an update re-renders: changed values, added and removed keys', async () => {
    const before = await cluster.template('web');
    await cluster.patchTemplate('web', {
      spec: { values: { port: '6432' }, data: { 'static.txt': null, 'extra.conf': 'port={{ port }}' } },
    });
    const configMap = await waitFor(async () => {
      const current = await cluster.configMap('web-config');
      return current?.data?.['extra.conf'] === 'port=6432' && current;
    });
    // Removed keys are gone (the update replaces data whole), others re-rendered.
    expect(configMap.data).toEqual({ 'app.conf': 'database=db.internal:6432', 'extra.conf': 'port=6432' });
    const template = await waitFor(async () => {
      const current = await cluster.template('web');
      return ready(current)?.observedGeneration === (before?.metadata.generation ?? 0) + 1 && current;
    });
    expect(template.status?.handlers?.rerender).toMatchObject({ outcome: 'success', cause: 'update' });
    const updated = await waitFor(async () =>
      (await cluster.events(template.metadata.uid)).find((event) => event.reason === 'Updated'),
    );
    expect(updated.message).toContain('spec.values.port changed');
    expect(updated.message).toContain('added extra.conf');
    expect(updated.message).toContain('removed static.txt');
  });

  test('a new targetName renders the new ConfigMap, then deletes the old one', async () => {
    await cluster.patchTemplate('web', { spec: { targetName: 'web-config-v2' } });
    const moved = await waitFor(() => cluster.configMap('web-config-v2'));
    expect(moved.data?.['app.conf']).toBe('database=db.internal:6432');
    await waitFor(async () => (await cluster.configMap('web-config')) === undefined);
    const template = await waitFor(async () => {
      const current = await cluster.template('web');
      return current?.status?.configMap === 'web-config-v2' && current;
    });
    await waitFor(async () => (await eventReasons(template.metadata.uid)).includes('Normal/Retargeted'));
  });

  test('an invalid template fails permanently: status, Warning event, no retry, no ConfigMap', async () => {
    const broken = await cluster.createTemplate('broken', {
      targetName: 'broken-config',
      values: { known: 'k' },
      data: { 'a.conf': '{{ known }} {{ unknown }}', 'b.conf': 'unclosed {{ known' },
    });
    const template = await waitFor(async () => {
      const current = await cluster.template('broken');
      return current?.status?.handlers?.render?.outcome === 'failed' && current;
    });
    // Failed after its first attempt: a PermanentError is never retried.
    expect(template.status?.handlers?.render).toMatchObject({ cause: 'create', retries: 1 });
    expect(ready(template)).toMatchObject({ status: 'False', reason: 'InvalidTemplate' });
    expect(ready(template)?.message).toContain('data[a.conf] at 12: no value named "unknown" in spec.values');
    expect(ready(template)?.message).toContain("data[b.conf] at 9: '{{' is never closed with '}}'");
    const warning = await waitFor(async () =>
      (await cluster.events(broken.metadata.uid)).find((event) => event.reason === 'InvalidTemplate'),
    );
    expect(warning.type).toBe('Warning');
    expect(warning.message).toContain('"unknown"');
    // The framework's own record of the permanent failure, next to ours.
    await waitFor(async () => (await eventReasons(broken.metadata.uid)).includes('Warning/HandlerFailed'));
    expect(await cluster.configMap('broken-config')).toBeUndefined();
  });

  test('fixing the invalid template renders it', async () => {
    await cluster.patchTemplate('broken', { spec: { data: { 'a.conf': '{{ known }}', 'b.conf': 'closed' } } });
    const configMap = await waitFor(() => cluster.configMap('broken-config'));
    expect(configMap.data).toEqual({ 'a.conf': 'k', 'b.conf': 'closed' });
    const template = await waitFor(async () => {
      const current = await cluster.template('broken');
      return ready(current)?.status === 'True' && current;
    });
    expect(template.status?.handlers?.rerender).toMatchObject({ outcome: 'success', cause: 'update' });
  });

  test('breaking a working template keeps its last good ConfigMap', async () => {
    const before = await waitFor(() => cluster.configMap('web-config-v2'));
    await cluster.patchTemplate('web', { spec: { data: { 'app.conf': 'database={{ nowhere }}' } } });
    const template = await waitFor(async () => {
      const current = await cluster.template('web');
      return current?.status?.handlers?.rerender?.outcome === 'failed' && current;
    });
    expect(ready(template)).toMatchObject({ status: 'False', reason: 'InvalidTemplate' });
    const after = await cluster.configMap('web-config-v2');
    expect(after?.data).toEqual(before.data);
    expect(after?.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    // Repair it for the tests that follow.
    await cluster.patchTemplate('web', { spec: { data: { 'app.conf': 'database={{ host }}' } } });
    await waitFor(
      async () => (await cluster.configMap('web-config-v2'))?.data?.['app.conf'] === 'database=db.internal',
    );
  });

  test('a deleted ConfigMap is recreated and an edited one restored, at once (no timer)', async () => {
    const template = await waitFor(() => cluster.template('web'));
    await cluster.deleteConfigMap('web-config-v2');
    const recreated = await waitFor(() => cluster.configMap('web-config-v2'));
    expect(recreated.data?.['app.conf']).toBe('database=db.internal');
    await waitFor(async () => (await eventReasons(template.metadata.uid)).includes('Normal/Recreated'));

    await cluster.patchConfigMap('web-config-v2', { data: { 'app.conf': 'edited by hand', junk: 'x' } });
    const restored = await waitFor(async () => {
      const current = await cluster.configMap('web-config-v2');
      return current?.data?.['app.conf'] === 'database=db.internal' && current;
    });
    expect(restored.data).toEqual({ 'app.conf': 'database=db.internal', 'extra.conf': 'port=6432' });
    const event = await waitFor(async () =>
      (await cluster.events(template.metadata.uid)).find((candidate) => candidate.reason === 'Restored'),
    );
    expect(event.message).toContain('changed app.conf');
    expect(event.message).toContain('removed junk');
  });

  test('a ConfigMap that lost our label, and so left the watch, gets it back', async () => {
    await cluster.patchConfigMap('web-config-v2', { metadata: { labels: { 'app.kubernetes.io/managed-by': null } } });
    const relabelled = await waitFor(async () => {
      const current = await cluster.configMap('web-config-v2');
      return current?.metadata.labels?.['app.kubernetes.io/managed-by'] === 'opkit-example-configmap' && current;
    });
    expect(relabelled.data).toEqual({ 'app.conf': 'database=db.internal', 'extra.conf': 'port=6432' });
  });

  test('delete removes the ConfigMap, then the finalizer, then the template is gone', async () => {
    const template = await waitFor(() => cluster.template('web'));
    await cluster.deleteTemplate('web');
    await waitFor(async () => (await cluster.template('web')) === undefined);
    expect(await cluster.configMap('web-config-v2')).toBeUndefined();
    // The old target was deleted at the retarget; nothing of this template is left.
    expect(await cluster.configMap('web-config')).toBeUndefined();
    await waitFor(async () => (await eventReasons(template.metadata.uid)).includes('Normal/Deleted'));
  });
});
