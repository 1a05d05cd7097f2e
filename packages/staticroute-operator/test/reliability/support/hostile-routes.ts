/**
 * A seeded generator of malformed or hostile StaticRoutes (pure: no I/O), for the bad-input reliability test.
 *
 * Every case is built so that nothing of it may reach a routing table: either the API server must refuse it at
 * admission (OpenAPI, CEL, strict field validation, object meta rules), or the operator must accept nothing of it and
 * report the object as Refused or Failed. Hostile objects therefore never mix in a usable destination, except where
 * admission must refuse them anyway (then a usable destination would show that admission let it through).
 *
 * Network safety: every usable-looking IPv4 destination is in 34.0.0.0/8 and every IPv6 one in 2001:db8::/32; they
 * are only ever written into the simulated nodes' tables.
 */
import { seededRandom } from './random.js';
import { ADDRESS_TEMPLATES } from './hostile-address-templates.js';
import { OBJECT_TEMPLATES } from './hostile-object-templates.js';
import {
  HOSTILE_CATEGORIES,
  type HostileCase,
  type HostileCategory,
  type HostileDraft,
  type HostileOptions,
  type HostileTarget,
  type HostileTemplate,
} from './hostile-types.js';

export { HOSTILE_CATEGORIES, type HostileCase, type HostileCategory, type HostileOptions, type HostileTarget };

const TEMPLATES = { ...ADDRESS_TEMPLATES, ...OBJECT_TEMPLATES } as Record<HostileCategory, HostileTemplate>;

function build(draft: HostileDraft, category: HostileCategory, name: string): HostileCase {
  const manifest: Record<string, unknown> = {
    apiVersion: 'networking.digitalocean.com/v1',
    kind: 'StaticRoute',
    metadata: { ...(draft.metadata ?? {}), name: draft.name ?? name },
    ...(draft.spec === undefined ? {} : { spec: draft.spec }),
    ...(draft.extra ?? {}),
  };
  // A user may also put status into the created object; the status subresource must drop it.
  if (draft.userStatus) manifest.status = draft.userStatus;
  return {
    name: draft.name ?? name,
    category,
    description: draft.description,
    field: draft.field,
    manifest,
    ...(draft.userStatus ? { userStatus: draft.userStatus } : {}),
  };
}

/**
 * Generates at least `count` hostile StaticRoutes (every category at least once, then categories at random),
 * deterministic for a given seed and target. Cases with identical content are generated again, so none repeats.
 */
export function generateHostileRoutes(target: HostileTarget, options: HostileOptions): HostileCase[] {
  const random = seededRandom(options.seed);
  const count = Math.max(options.count ?? 120, HOSTILE_CATEGORIES.length);
  const prefix = options.prefix ?? 'fuzz';
  const cases: HostileCase[] = [];
  const contents = new Set<string>();
  const order = [...HOSTILE_CATEGORIES];
  while (order.length < count) order.push(random.pick(HOSTILE_CATEGORIES));
  for (const [index, category] of order.entries()) {
    const name = `${prefix}-${String(index).padStart(3, '0')}-${category}`;
    let built: HostileCase | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      const candidate = build(TEMPLATES[category](random, target), category, name);
      const { metadata, ...rest } = candidate.manifest as { metadata: Record<string, unknown> };
      const key = JSON.stringify([{ ...metadata, name: candidate.name === name ? '' : candidate.name }, rest]);
      if (contents.has(key)) continue;
      contents.add(key);
      built = candidate;
      break;
    }
    if (built) cases.push(built);
  }
  // Variants of a category can run out (few distinct forms); top up with categories that have many.
  let serial = order.length;
  while (cases.length < count) {
    const category = random.pick(['malformed-destination', 'host-bits', 'unreachable-gateway', 'node-subnet'] as const);
    const name = `${prefix}-${String(serial++).padStart(3, '0')}-${category}`;
    const candidate = build(TEMPLATES[category](random, target), category, name);
    const { metadata, ...rest } = candidate.manifest as { metadata: Record<string, unknown> };
    const key = JSON.stringify([{ ...metadata, name: '' }, rest]);
    if (contents.has(key)) continue;
    contents.add(key);
    cases.push(candidate);
  }
  return cases;
}
