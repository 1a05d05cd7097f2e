import { describe, expect, it } from 'vitest';
import {
  KOPF_FINALIZER,
  KOPF_LAST_HANDLED_ANNOTATION,
  kopfFinalizerIndex,
  lastHandledGateways,
} from '../../src/logic/migration.js';

describe('lastHandledGateways', () => {
  const annotate = (value: string) => ({ [KOPF_LAST_HANDLED_ANNOTATION]: value });

  it("reads the seed's gateway from Kopf's annotation", () => {
    const kopf = JSON.stringify({ spec: { destinations: ['34.160.111.145'], gateway: '10.116.0.5' } });
    expect(lastHandledGateways(annotate(kopf))).toEqual(['10.116.0.5']);
  });

  it('reads a gateways list, canonical and sorted', () => {
    expect(lastHandledGateways(annotate('{"spec":{"gateways":["fd00::B","fd00::a"]}}'))).toEqual([
      'fd00::a',
      'fd00::b',
    ]);
  });

  it('is undefined when absent or unreadable', () => {
    expect(lastHandledGateways(undefined)).toBeUndefined();
    expect(lastHandledGateways({})).toBeUndefined();
    expect(lastHandledGateways(annotate('{not json'))).toBeUndefined();
    expect(lastHandledGateways(annotate('null'))).toBeUndefined();
    expect(lastHandledGateways(annotate('{"spec":{"destinations":[]}}'))).toBeUndefined();
    expect(lastHandledGateways(annotate('{"spec":{"gateway":"not-an-ip"}}'))).toBeUndefined();
  });
});

describe('kopfFinalizerIndex', () => {
  it('finds the finalizer', () => {
    expect(kopfFinalizerIndex(['a', KOPF_FINALIZER])).toBe(1);
    expect(kopfFinalizerIndex(['a'])).toBe(-1);
    expect(kopfFinalizerIndex(undefined)).toBe(-1);
  });
});
