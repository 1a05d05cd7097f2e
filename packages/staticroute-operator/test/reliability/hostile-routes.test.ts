/**
 * The hostile-input generator itself (pure, no cluster): seeded and replayable, covers every category, and never
 * produces a usable destination outside the ranges the test bed may put in a table.
 */
import { describe, expect, it } from 'vitest';
import { parsePrefix, prefixContains, mustParsePrefix } from '../../src/logic/ip.js';
import {
  generateHostileRoutes,
  HOSTILE_CATEGORIES,
  type HostileCase,
  type HostileTarget,
} from './support/hostile-routes.js';
import { seededRandom } from './support/random.js';

const TARGET: HostileTarget = {
  gatewayV4: '10.116.0.5',
  gatewayV6: 'fd00:116::5',
  nodeSubnetV4: '10.116.0.0/20',
  nodeSubnetV6: 'fd00:116::/64',
  nodeAddresses: ['10.116.0.10', '10.116.0.11', 'fd00:116::a', 'fd00:116::b'],
  nodeNames: ['node-1', 'node-2'],
  apiServerAddress: '10.116.0.1',
  apiServerAddressV6: 'fd00:116::1',
};

/** Where a destination that parses may point: the seed's public range, documentation, or what must be refused. */
const ALLOWED_V4 = ['34.0.0.0/8', '10.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '192.0.2.0/24'];
const ALLOWED_V6 = ['2001:db8::/32', 'fd00:116::/64', 'fe80::/10', 'ff00::/8', '::1/128'];
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function destinationsOf(item: HostileCase): unknown[] {
  const spec = item.manifest.spec as { destinations?: unknown } | undefined;
  return Array.isArray(spec?.destinations) ? spec.destinations : [];
}

describe('seeded random', () => {
  it('replays the same sequence for a seed and differs across seeds', () => {
    const draw = (seed: number) =>
      Array.from(
        { length: 20 },
        (() => {
          const random = seededRandom(seed);
          return () => random.int(0, 1_000_000);
        })(),
      );
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('keeps int() within bounds and shuffle() a permutation', () => {
    const random = seededRandom(99);
    for (let i = 0; i < 1000; i++) {
      const value = random.int(-3, 3);
      expect(value).toBeGreaterThanOrEqual(-3);
      expect(value).toBeLessThanOrEqual(3);
    }
    const items = Array.from({ length: 50 }, (_, i) => i);
    expect(random.shuffle(items).sort((a, b) => a - b)).toEqual(items);
  });
});

describe('generateHostileRoutes', () => {
  const cases = generateHostileRoutes(TARGET, { seed: 34 });

  it('makes at least 100 cases by default, and as many as asked', () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
    expect(generateHostileRoutes(TARGET, { seed: 1, count: 150 })).toHaveLength(150);
  });

  it('is deterministic for a seed and varies with it', () => {
    expect(generateHostileRoutes(TARGET, { seed: 34 })).toEqual(cases);
    expect(JSON.stringify(generateHostileRoutes(TARGET, { seed: 35 }))).not.toEqual(JSON.stringify(cases));
  });

  it('covers every category', () => {
    expect(new Set(cases.map((item) => item.category))).toEqual(new Set(HOSTILE_CATEGORIES));
  });

  it('gives every case a unique name and unique content', () => {
    expect(new Set(cases.map((item) => item.name)).size).toBe(cases.length);
    const contents = cases.map((item) =>
      JSON.stringify({ ...item.manifest, metadata: { ...(item.manifest.metadata as object), name: '' } }),
    );
    const nameOnly = cases.filter((item) => item.field === 'metadata.name');
    // Cases that differ only in their (invalid) name are distinct by name.
    expect(new Set(contents).size).toBeGreaterThanOrEqual(cases.length - nameOnly.length);
  });

  it('uses valid object names except where the name is the point', () => {
    for (const item of cases) {
      if (item.field === 'metadata.name') {
        expect(item.name.length > 253 || !DNS_SUBDOMAIN.test(item.name), item.name).toBe(true);
      } else {
        expect(item.name.length, item.name).toBeLessThanOrEqual(253);
        expect(item.name, item.name).toMatch(DNS_SUBDOMAIN);
      }
    }
    expect(cases.some((item) => item.name.length === 253)).toBe(true);
  });

  it('names the field at fault for every case, and sends JSON-serializable objects', () => {
    for (const item of cases) {
      expect(item.field).toMatch(/^(spec|metadata|extra)(\.|\[|$)/);
      expect(JSON.parse(JSON.stringify(item.manifest))).toEqual(item.manifest);
      expect(item.manifest).toMatchObject({ apiVersion: 'networking.digitalocean.com/v1', kind: 'StaticRoute' });
    }
  });

  it('includes 10,000 distinct destinations in one object', () => {
    const all = generateHostileRoutes(TARGET, { seed: 34, count: 400 });
    const huge = all.find((item) => destinationsOf(item).length === 10_000);
    expect(huge).toBeDefined();
    expect(new Set(destinationsOf(huge!)).size).toBe(10_000);
  });

  it('never points a parsable destination outside 34.0.0.0/8, documentation ranges or ranges that must be refused', () => {
    const all = generateHostileRoutes(TARGET, { seed: 34, count: 400 });
    for (const item of all) {
      for (const destination of destinationsOf(item)) {
        if (typeof destination !== 'string') continue;
        if (/^34\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(destination)) continue; // the bulk of the 10,000-entry lists
        const parsed = parsePrefix(destination);
        if (!parsed || parsed.prefix.length === 0) continue;
        const allowed = (parsed.prefix.family === 4 ? ALLOWED_V4 : ALLOWED_V6).map(mustParsePrefix);
        expect(
          allowed.some((range) => prefixContains(range, parsed.prefix) || prefixContains(parsed.prefix, range)),
          `${item.name}: ${destination}`,
        ).toBe(true);
      }
    }
  });

  it('generates what each category claims', () => {
    const all = generateHostileRoutes(TARGET, { seed: 34, count: 400 });
    const of = (category: string) => all.filter((item) => item.category === category);
    for (const item of of('host-bits')) {
      expect(
        destinationsOf(item).every((d) => parsePrefix(d as string)?.hostBitsSet === true),
        item.name,
      ).toBe(true);
    }
    for (const item of of('malformed-destination')) {
      expect(
        destinationsOf(item).some((d) => parsePrefix(d as string) === undefined),
        item.name,
      ).toBe(true);
    }
    for (const item of of('default-route')) {
      expect(
        destinationsOf(item).every((d) => parsePrefix(d as string)?.prefix.length === 0),
        item.name,
      ).toBe(true);
    }
    for (const item of of('user-status')) {
      const nodes = (item.userStatus as { nodes: Record<string, unknown> }).nodes;
      expect(Object.keys(nodes).sort()).toEqual([...TARGET.nodeNames, 'ghost-node'].sort());
    }
    for (const item of of('mixed-family')) {
      const spec = item.manifest.spec as { destinations: string[]; gateway?: string; gateways?: string[] };
      const families = new Set(
        [...spec.destinations, ...(spec.gateways ?? []), spec.gateway ?? spec.destinations[0]!].map((text) =>
          text.includes(':') ? 6 : 4,
        ),
      );
      expect(families.size, item.name).toBe(2);
    }
  });
});
