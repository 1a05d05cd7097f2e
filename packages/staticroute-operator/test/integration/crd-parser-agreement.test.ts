/**
 * The StaticRoute CRD (deploy/crd.yaml, hand-written: its CEL rules have no TypeScript source) and the agents' spec
 * parser (src/logic/spec.ts) must say the same of every spec: what the API server admits, the parser accepts, and
 * what it refuses, the parser refuses too. This test is the check that fails when they drift apart: a field added to
 * one and not the other, a rule tightened on one side only.
 *
 * Cases come from two sources: a table of specs at the edges of each rule, and, for every property the CRD's schema
 * declares under `spec`, that property set to a value of the wrong type (a property the parser ignores is caught
 * there). Each is sent to a real API server with `--dry-run=server` and given to the parser.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseRouteSpec } from '../../src/logic/spec.js';
import { REPO_DIR } from '../support/build.js';

const CRD = path.join(REPO_DIR, 'deploy/crd.yaml');
const BASE = { destinations: ['198.51.100.0/24'], gateway: '10.116.0.5' };

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
}

/** The properties the CRD's schema declares under `spec`. */
function specProperties(): string[] {
  const crd = parse(readFileSync(CRD, 'utf8')) as {
    spec: { versions: Array<{ schema: { openAPIV3Schema: SchemaNode } }> };
  };
  const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties?.spec;
  return Object.keys(spec?.properties ?? {}).sort();
}

/** Specs at the edges of the rules, named for the report. */
const TABLE: Array<[string, Record<string, unknown>]> = [
  ['the seed README example', BASE],
  ['a host address', { ...BASE, destinations: ['34.160.111.145'] }],
  ['ECMP', { destinations: ['198.51.100.0/24'], gateways: ['10.116.0.5', '10.116.0.12'] }],
  ['IPv6', { destinations: ['2001:db8::/32'], gateway: 'fd00:116::5' }],
  ['host bits set', { ...BASE, destinations: ['198.51.100.1/24'] }],
  ['prefix too long', { ...BASE, destinations: ['10.0.0.1/33'] }],
  ['not an address', { ...BASE, destinations: ['example.com'] }],
  ['IPv4-mapped IPv6', { ...BASE, destinations: ['::ffff:1.2.3.4'] }],
  ['mixed families', { ...BASE, destinations: ['2001:db8::/64'] }],
  ['duplicate destinations', { ...BASE, destinations: ['198.51.100.0/24', '198.51.100.0/24'] }],
  ['no destinations', { ...BASE, destinations: [] }],
  ['gateway and gateways', { ...BASE, gateways: ['10.116.0.12', '10.116.0.5'] }],
  ['neither gateway nor gateways', { destinations: ['198.51.100.0/24'] }],
  ['gateway not an IP', { ...BASE, gateway: 'gw.example' }],
  ['one ECMP gateway', { destinations: ['198.51.100.0/24'], gateways: ['10.116.0.5'] }],
  ['duplicate ECMP gateways', { destinations: ['198.51.100.0/24'], gateways: ['10.116.0.5', '10.116.0.5'] }],
  ['a selector', { ...BASE, nodeSelector: { matchLabels: { egress: 'nat' } } }],
  ['a bad label value', { ...BASE, nodeSelector: { matchLabels: { egress: 'not valid!' } } }],
  [
    'an expression',
    { ...BASE, nodeSelector: { matchExpressions: [{ key: 'egress', operator: 'In', values: ['nat'] }] } },
  ],
  [
    'an unknown operator',
    { ...BASE, nodeSelector: { matchExpressions: [{ key: 'egress', operator: 'Near', values: ['nat'] }] } },
  ],
  ['gateway health on', { ...BASE, gatewayHealth: { check: 'Enabled', whenAllDown: 'Withdraw' } }],
  ['gateway health off', { ...BASE, gatewayHealth: { check: 'Disabled' } }],
  ['gateway health lower case', { ...BASE, gatewayHealth: { check: 'enabled' } }],
  ['gateway health unknown policy', { ...BASE, gatewayHealth: { whenAllDown: 'Flap' } }],
];

/** A value of a type no property of the spec has at top level. */
const WRONG_TYPE = 12345;

let controlPlane: ControlPlane;

beforeAll(async () => {
  controlPlane = await startControlPlane();
  const applied = await controlPlane.kubectl(['apply', '-f', CRD]);
  expect(applied.code, applied.stderr).toBe(0);
  await controlPlane.kubectl(['wait', '--for=condition=Established', 'crd/staticroutes.networking.digitalocean.com']);
});
afterAll(async () => {
  await controlPlane?.stop();
});

/** Whether the API server admits `spec` (nothing is stored). */
async function admitted(spec: Record<string, unknown>): Promise<{ ok: boolean; message: string }> {
  const object = {
    apiVersion: 'networking.digitalocean.com/v1',
    kind: 'StaticRoute',
    metadata: { name: 'agreement' },
    spec,
  };
  const result = await controlPlane.kubectl(['create', '--dry-run=server', '-f', '-'], {
    input: JSON.stringify(object),
    allowFailure: true,
  });
  return { ok: result.code === 0, message: result.stderr.trim() };
}

async function verdicts(cases: Array<[string, Record<string, unknown>]>): Promise<string[]> {
  const disagreements: string[] = [];
  for (const [name, spec] of cases) {
    const api = await admitted(spec);
    const parsed = parseRouteSpec(spec);
    if (api.ok !== parsed.ok) {
      const parser = parsed.ok ? 'accepts it' : `refuses it: ${parsed.problems.join('; ')}`;
      disagreements.push(
        `${name}: the API server ${api.ok ? 'admits it' : `refuses it (${api.message})`}, the parser ${parser}`,
      );
    }
  }
  return disagreements;
}

describe('deploy/crd.yaml and the spec parser', () => {
  it('say the same of specs at the edges of every rule', async () => {
    expect(await verdicts(TABLE)).toEqual([]);
  });

  it('both refuse a wrong type for every property the CRD declares (a property only one of them knows shows here)', async () => {
    const properties = specProperties();
    expect(properties).toEqual(expect.arrayContaining(['destinations', 'gateway', 'gateways', 'nodeSelector']));
    const cases = properties.map((property): [string, Record<string, unknown>] => {
      const spec: Record<string, unknown> = { ...BASE, [property]: WRONG_TYPE };
      // A wrong `gateways` must not fail for having both gateway forms.
      if (property === 'gateways') delete spec.gateway;
      return [`spec.${property} = ${WRONG_TYPE}`, spec];
    });
    expect(await verdicts(cases)).toEqual([]);
  });
});
