/**
 * The in-memory table (logic/route-view.ts) against a real kernel: after every plan it executed, the view of the
 * planned destinations equals what a fresh dump of the namespace's table says, for IPv4 and IPv6, single-path and
 * multipath (the kernel keeps IPv6 multipath routes as sibling routes, which the view must not get wrong).
 * The route agent plans one object's change against this view, so a mismatch would be a wrong incremental plan.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNetwork, type SimNetwork, type SimNode } from '@opkit/testbed';
import { buildOperator, PACKAGE_DIR } from '../support/build.js';

let network: SimNetwork;
let node: SimNode;

/** One step: the desired routes of some destinations (an empty list of gateways: the destination is not wanted). */
interface Step {
  destinations: Array<{ destination: string; gateways: string[] }>;
}

interface StepResult {
  operations: string[];
  failures: string[];
  view: string[];
  kernel: string[];
}

/**
 * Runs the steps in the node's namespace with the operator's compiled RouteTable, planner and RouteView: one
 * process, as the agent runs them.
 */
async function runSteps(steps: Step[]): Promise<StepResult[]> {
  const script = `
    import { RouteTable } from '${PACKAGE_DIR}dist/adapters/route-table.js';
    import { RouteView } from '${PACKAGE_DIR}dist/logic/route-view.js';
    import { planRouteChanges } from '${PACKAGE_DIR}dist/logic/plan.js';
    import { mustParsePrefix, formatPrefix, sortAddresses } from '${PACKAGE_DIR}dist/logic/ip.js';
    const steps = JSON.parse(process.argv[1]);
    const table = RouteTable.open({ protocol: 201 });
    const view = new RouteView(201);
    view.replaceAll(await table.listRoutes());
    const show = (routes, keys) => routes
      .filter((route) => keys.has(route.destination))
      .map((route) => [route.destination, route.protocol, route.metric, route.type, ...route.gateways].join(' '))
      .sort();
    const results = [];
    for (const step of steps) {
      const desired = new Map();
      const keys = new Set();
      for (const item of step.destinations) {
        const destination = mustParsePrefix(item.destination);
        const key = formatPrefix(destination);
        keys.add(key);
        if (item.gateways.length === 0) continue;
        desired.set(key, { key, destination, gateways: sortAddresses(item.gateways), owner: 't', sharedWith: [], seedGateways: [] });
      }
      const plan = planRouteChanges(desired, view.routesAt(keys), { protocol: 201 });
      const outcomes = await table.apply(plan.operations);
      for (const outcome of outcomes) if (outcome.ok) view.applied(outcome.operation);
      results.push({
        operations: plan.operations.map((op) => op.op + ' ' + (op.op === 'delete' ? op.route.destination : op.route.key)),
        failures: outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.error),
        view: show(view.routesAt(keys), keys),
        kernel: show(await table.listRoutes(), keys),
      });
    }
    table.close();
    process.stdout.write(JSON.stringify(results));
  `;
  const result = await node.exec([process.execPath, '--input-type=module', '-e', script, JSON.stringify(steps)]);
  return JSON.parse(result.stdout) as StepResult[];
}

beforeAll(async () => {
  await buildOperator();
  network = await startNetwork({ nodes: 1 });
  node = network.nodes[0]!;
});

afterAll(async () => {
  await network?.destroy();
});

describe('RouteView follows the kernel', () => {
  it('through adds, gateway changes, multipath changes and deletes, IPv4 and IPv6', async () => {
    const [v4a, v4b] = ['10.116.0.5', '10.116.0.12'];
    const [v6a, v6b] = ['fd00:116::5', 'fd00:116::c'];
    const steps: Step[] = [
      { destinations: [{ destination: '34.0.0.1', gateways: [v4a] }] },
      { destinations: [{ destination: '2001:db8::1', gateways: [v6a] }] },
      { destinations: [{ destination: '34.0.0.1', gateways: [v4b] }] },
      { destinations: [{ destination: '2001:db8::1', gateways: [v6b] }] },
      { destinations: [{ destination: '34.0.0.2', gateways: [v4a, v4b] }] },
      { destinations: [{ destination: '2001:db8::2', gateways: [v6a, v6b] }] },
      { destinations: [{ destination: '34.0.0.2', gateways: [v4a] }] },
      { destinations: [{ destination: '2001:db8::2', gateways: [v6b] }] },
      { destinations: [{ destination: '2001:db8::1', gateways: [v6a, v6b] }] },
      {
        destinations: [
          { destination: '34.0.0.1', gateways: [] },
          { destination: '34.0.0.2', gateways: [] },
          { destination: '2001:db8::1', gateways: [] },
          { destination: '2001:db8::2', gateways: [] },
        ],
      },
    ];
    const results = await runSteps(steps);
    expect(results).toHaveLength(steps.length);
    results.forEach((result, index) => {
      expect(result.failures, `step ${index}`).toEqual([]);
      expect(result.operations.length, `step ${index}: something to do`).toBeGreaterThan(0);
      expect(result.view, `step ${index}: view = kernel`).toEqual(result.kernel);
    });
    expect(results.at(-1)?.kernel).toEqual([]);
  });
});
