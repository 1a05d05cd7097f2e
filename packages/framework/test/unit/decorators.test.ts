import { describe, expect, test } from 'vitest';
import {
  getHandlers,
  getOperatorOptions,
  OnCleanup,
  OnCreate,
  OnDelete,
  OnEvent,
  OnField,
  OnResume,
  OnStartup,
  OnTimer,
  OnUpdate,
  Operator,
  registeredOperators,
} from '../../src/decorators/index.js';
import { needsFinalizer, validateHandlers } from '../../src/core/handlers.js';

@Operator({ group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget', scope: 'node' })
class WidgetOperator {
  @OnStartup() start() {}
  @OnCreate({ id: 'make', retries: 3, timeout: 1000, backoff: { initialMs: 10 } })
  @OnUpdate()
  apply() {}
  @OnField('spec.gateway') gateway() {}
  @OnField(['metadata', 'labels', 'app.kubernetes.io/name'], { id: 'label' }) label() {}
  @OnDelete() remove() {}
  @OnDelete({ optional: true }) bestEffort() {}
  @OnResume() resume() {}
  @OnEvent() raw() {}
  @OnTimer(5000, { initialDelayMs: 10 }) tick() {}
  @OnCleanup() stop() {}
}

describe('decorators', () => {
  test('@Operator records options and registers the class once', () => {
    expect(getOperatorOptions(WidgetOperator)).toMatchObject({ plural: 'widgets', scope: 'node' });
    expect(registeredOperators().filter((cls) => cls === WidgetOperator)).toHaveLength(1);
  });

  test('handlers are recorded in declaration order with their options', () => {
    const handlers = getHandlers(WidgetOperator);
    expect(handlers.map((h) => `${h.kind}:${h.id}`)).toEqual([
      'startup:start',
      // Stacked decorators apply bottom-up: @OnUpdate first.
      'update:apply',
      'create:make',
      'field:gateway/spec.gateway',
      'field:label',
      'delete:remove',
      'delete:bestEffort',
      'resume:resume',
      'event:raw',
      'timer:tick',
      'cleanup:stop',
    ]);
    const create = handlers.find((h) => h.kind === 'create');
    expect(create).toMatchObject({ retries: 3, timeoutMs: 1000, backoff: { initialMs: 10 }, method: 'apply' });
    expect(handlers.find((h) => h.id === 'label')?.field).toEqual(['metadata', 'labels', 'app.kubernetes.io/name']);
    expect(handlers.find((h) => h.kind === 'timer')).toMatchObject({ intervalMs: 5000, initialDelayMs: 10 });
    expect(() => validateHandlers('Widget', handlers)).not.toThrow();
    expect(needsFinalizer(handlers)).toBe(true);
  });

  test('only optional delete handlers need no finalizer', () => {
    @Operator({ group: 'example.com', version: 'v1', plural: 'gadgets', kind: 'Gadget' })
    class Optional {
      @OnDelete({ optional: true }) remove() {}
    }
    expect(needsFinalizer(getHandlers(Optional))).toBe(false);
  });

  test('subclasses inherit handlers without changing the base', () => {
    @Operator({ group: 'example.com', version: 'v1', plural: 'things', kind: 'Thing' })
    class Base {
      @OnCreate() created() {}
    }
    @Operator({ group: 'example.com', version: 'v1', plural: 'things2', kind: 'Thing2' })
    class Derived extends Base {
      @OnUpdate() updated() {}
    }
    expect(getHandlers(Derived).map((h) => h.id)).toEqual(['created', 'updated']);
    expect(getHandlers(Base).map((h) => h.id)).toEqual(['created']);
  });

  test('duplicate ids within a cause are rejected', () => {
    class Dup {
      @OnCreate({ id: 'x' }) a() {}
      @OnField('spec.a', { id: 'x' }) b() {}
    }
    expect(() => validateHandlers('Dup', getHandlers(Dup))).toThrow(/duplicate handler id 'x'/);
  });

  test('invalid declarations fail at decoration time', () => {
    expect(() => Operator({ group: 'x', version: 'v1', plural: 'p', kind: 'K', persistencePrefix: 'Bad_' })).toThrow(
      /persistence prefix/,
    );
    expect(() => OnTimer(0)).toThrow(/interval/);
    expect(() => OnField('spec..x')).toThrow(/field path/);
  });
});
