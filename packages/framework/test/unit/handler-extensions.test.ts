import { describe, expect, test } from 'vitest';
import {
  Daemon,
  getDaemons,
  getHandlers,
  getIndexes,
  getSecondaryHandlers,
  Index,
  OnCreate,
  OnField,
  OnSecondary,
  OnTimer,
  Operator,
} from '../../src/decorators/index.js';
import { extrasOf, validateExtensions, type ExtensionsToValidate } from '../../src/core/handler-extensions.js';
import { ABSENT, PRESENT } from '../../src/core/filters.js';
import { defineOperatorFromClass } from '../../src/engine/definition.js';
import { resolveSettings } from '../../src/engine/settings.js';

const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };
const when = (): boolean => true;

@Operator({
  group: 'example.com',
  version: 'v1',
  plural: 'extwidgets',
  kind: 'ExtWidget',
  watches: [
    { resource: CONFIGMAPS, owns: true },
    { id: 'cache-only', resource: CONFIGMAPS, labelSelector: 'a=b' },
  ],
})
class ExtendedOperator {
  @OnCreate({ labels: { tier: 'gold', zone: PRESENT }, annotations: { skip: ABSENT }, when }) create() {}
  @OnField('spec.size', { onCreate: false }) size() {}
  @OnTimer(1000, { idleMs: 5000, sharp: true, labels: { t: 'y' } }) tick() {}
  @OnSecondary({ resource: 'configmaps', retries: 3, timeout: 100 }) secondary() {}
  @Daemon({ cancellationTimeoutMs: 50, initialDelayMs: 10, retries: 2, labels: { run: 'yes' } }) daemon() {}
  @Index({ resource: 'cache-only' }) byName() {}
  @Index({ id: 'own' }) ownIndex() {}
}

describe('decorators of the extensions', () => {
  test('filters, onCreate, idle and sharp are recorded on the handler specs', () => {
    const [create, size, tick] = getHandlers(ExtendedOperator);
    expect(extrasOf(create!).filters).toEqual({
      labels: { tier: 'gold', zone: PRESENT },
      annotations: { skip: ABSENT },
      when,
    });
    expect(extrasOf(size!).onCreate).toBe(false);
    expect(extrasOf(tick!)).toMatchObject({ idleMs: 5000, sharp: true, filters: { labels: { t: 'y' } } });
  });

  test('@OnSecondary, @Daemon and @Index are recorded apart, with their options', () => {
    expect(getSecondaryHandlers(ExtendedOperator)).toEqual([
      expect.objectContaining({
        kind: 'secondary',
        id: 'secondary',
        resource: 'configmaps',
        retries: 3,
        timeoutMs: 100,
      }),
    ]);
    expect(getDaemons(ExtendedOperator)).toEqual([
      expect.objectContaining({
        kind: 'daemon',
        id: 'daemon',
        cancellationTimeoutMs: 50,
        initialDelayMs: 10,
        retries: 2,
        filters: { labels: { run: 'yes' } },
      }),
    ]);
    expect(getIndexes(ExtendedOperator).map((index) => [index.id, index.resource])).toEqual([
      ['byName', 'cache-only'],
      ['own', undefined],
    ]);
  });

  test('the definition resolves watches: ids default to the plural, selectors and owns kept', () => {
    const definition = defineOperatorFromClass(ExtendedOperator, resolveSettings({ instanceId: 'i' }));
    expect(definition.watches.map(({ id, ref, owns, labelSelector }) => ({ id, ref, owns, labelSelector }))).toEqual([
      { id: 'configmaps', ref: CONFIGMAPS, owns: true, labelSelector: undefined },
      { id: 'cache-only', ref: CONFIGMAPS, owns: false, labelSelector: 'a=b' },
    ]);
  });

  test('decorators refuse what cannot work', () => {
    expect(() => OnTimer(100, { idleMs: 0 })).toThrow(/idleMs/);
    expect(() => {
      class NotAMethod {
        field = 1;
      }
      Daemon()(NotAMethod.prototype, 'field', undefined);
    }).toThrow(/not a method/);
  });
});

describe('validateExtensions', () => {
  const base: ExtensionsToValidate = {
    handlers: [],
    secondary: [],
    daemons: [],
    indexes: [],
    watchIds: ['configmaps'],
    mappingWatchIds: [],
  };
  const secondary = (extra = {}) => ({ kind: 'secondary' as const, id: 's', method: 's', order: 0, ...extra });

  test('handlers and indexes must name declared watches', () => {
    expect(() => validateExtensions('op', { ...base, secondary: [secondary({ resource: 'nope' })] })).toThrow(
      /names watch 'nope'/,
    );
    expect(() =>
      validateExtensions('op', {
        ...base,
        indexes: [{ kind: 'index', id: 'i', method: 'i', order: 0, resource: 'x' }],
      }),
    ).toThrow(/@Index 'i' names watch 'x'/);
  });

  test('a watch that maps changes needs an @OnSecondary handler for them', () => {
    expect(() => validateExtensions('op', { ...base, mappingWatchIds: ['configmaps'] })).toThrow(/no @OnSecondary/);
    expect(() =>
      validateExtensions('op', { ...base, mappingWatchIds: ['configmaps'], secondary: [secondary()] }),
    ).not.toThrow();
    expect(() =>
      validateExtensions('op', {
        ...base,
        watchIds: ['configmaps', 'other'],
        mappingWatchIds: ['configmaps'],
        secondary: [secondary({ resource: 'other' })],
      }),
    ).toThrow(/watch 'configmaps' maps changes/);
  });

  test('duplicate ids and bad numbers are refused', () => {
    expect(() => validateExtensions('op', { ...base, secondary: [secondary(), secondary()] })).toThrow(/duplicate/);
    expect(() => validateExtensions('op', { ...base, secondary: [secondary({ retries: 0 })] })).toThrow(/retries/);
    const daemon = { kind: 'daemon' as const, id: 'd', method: 'd', order: 0 };
    expect(() => validateExtensions('op', { ...base, daemons: [{ ...daemon, cancellationTimeoutMs: -1 }] })).toThrow(
      /cancellationTimeoutMs/,
    );
    expect(() => validateExtensions('op', { ...base, daemons: [{ ...daemon, retries: 0 }] })).toThrow(/retries/);
  });
});

describe('operator definitions with watches', () => {
  test('watch ids must be unique; map must be a function', () => {
    @Operator({
      group: 'example.com',
      version: 'v1',
      plural: 'dupwatches',
      kind: 'DupWatch',
      watches: [{ resource: CONFIGMAPS }, { resource: CONFIGMAPS }],
    })
    class Duplicate {}
    expect(() => defineOperatorFromClass(Duplicate, resolveSettings({ instanceId: 'i' }))).toThrow(
      /two watches have the id 'configmaps'/,
    );
  });
});
