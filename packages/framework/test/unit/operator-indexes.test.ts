import pino from 'pino';
import { describe, expect, test } from 'vitest';
import { Index, Operator } from '../../src/decorators/index.js';
import { defineOperatorFromClass } from '../../src/engine/definition.js';
import { OperatorIndexes } from '../../src/engine/indexes.js';
import { resolveSettings } from '../../src/engine/settings.js';
import type { KubeObject } from '../../src/kube/types.js';

const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };
let explode = false;

@Operator({
  group: 'example.com',
  version: 'v1',
  plural: 'indexedwidgets',
  kind: 'IndexedWidget',
  watches: [{ resource: CONFIGMAPS }],
})
class IndexedOperator {
  @Index({ labels: { indexed: 'yes' } })
  byColor(object: KubeObject) {
    if (explode) throw new Error('index function broke');
    return { [(object.spec as { color: string }).color]: object.metadata.name };
  }

  @Index({ resource: 'configmaps' })
  configMapsByNamespace(object: KubeObject) {
    return { [object.metadata.namespace ?? '']: object.metadata.name };
  }
}

const widget = (name: string, color: string, labels: Record<string, string> = { indexed: 'yes' }): KubeObject => ({
  metadata: { name, uid: name, resourceVersion: '1', labels },
  spec: { color },
});

function indexes(): OperatorIndexes {
  const definition = defineOperatorFromClass(IndexedOperator, resolveSettings({ instanceId: 'i' }));
  return new OperatorIndexes(definition, pino({ level: 'silent' }));
}

describe('OperatorIndexes', () => {
  test('each index takes the events of its own resource only', () => {
    const all = indexes();
    all.apply(undefined, 'upsert', widget('w1', 'red'));
    all.apply('configmaps', 'upsert', { metadata: { name: 'c1', namespace: 'ns', uid: 'c1', resourceVersion: '1' } });
    expect(all.index('byColor').get('red')).toEqual(['w1']);
    expect(all.index('configMapsByNamespace').get('ns')).toEqual(['c1']);
    expect(all.index('configMapsByNamespace').size).toBe(1);
    expect(all.views.byColor?.keys()).toEqual(['red']);
  });

  test('an object that stops matching the filters leaves the index; deletions remove it', () => {
    const all = indexes();
    all.apply(undefined, 'upsert', widget('w1', 'red'));
    all.apply(undefined, 'upsert', widget('w2', 'red'));
    all.apply(undefined, 'upsert', widget('w1', 'red', {}));
    expect(all.index('byColor').get('red')).toEqual(['w2']);
    all.apply(undefined, 'delete', widget('w2', 'red'));
    expect(all.index('byColor').has('red')).toBe(false);
  });

  test('an index function that throws keeps the object previous values (stale rather than lost)', () => {
    const all = indexes();
    all.apply(undefined, 'upsert', widget('w1', 'red'));
    explode = true;
    try {
      all.apply(undefined, 'upsert', widget('w1', 'blue'));
    } finally {
      explode = false;
    }
    expect(all.index('byColor').get('red')).toEqual(['w1']);
    expect(all.index('byColor').has('blue')).toBe(false);
  });

  test('an undeclared index id throws', () => {
    expect(() => indexes().index('nope')).toThrow(/has no index 'nope' \(declared: byColor, configMapsByNamespace\)/);
  });
});
