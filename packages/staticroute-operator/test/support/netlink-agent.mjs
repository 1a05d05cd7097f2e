// A small process that runs inside a node's network namespace and drives the operator's netlink adapters on
// behalf of a test: JSON commands on stdin, JSON replies (and monitor events) on stdout, one per line.
import process from 'node:process';
import { createInterface } from 'node:readline';
import { RouteTable } from '../../dist/adapters/route-table.js';
import { RouteMonitor } from '../../dist/adapters/route-monitor.js';
import { planRouteChanges } from '../../dist/logic/plan.js';
import { mustParsePrefix, formatPrefix, formatAddress, sortAddresses } from '../../dist/logic/ip.js';

const protocol = Number(process.env.ROUTE_PROTOCOL ?? 201);
const table = RouteTable.open({ protocol });
let monitor;

const send = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

function desiredMap(list) {
  return new Map(
    list.map((item) => {
      const destination = mustParsePrefix(item.destination);
      const key = formatPrefix(destination);
      const route = {
        key,
        destination,
        gateways: sortAddresses(item.gateways),
        owner: item.owner ?? 'test',
        sharedWith: [],
        seedGateways: (item.seedGateways ?? []).map((set) => sortAddresses(set)),
      };
      return [key, route];
    }),
  );
}

function describe(operation) {
  const destination = operation.op === 'delete' ? operation.route.destination : operation.route.key;
  return { op: operation.op, destination, gateways: operation.route.gateways, reason: operation.reason };
}

function rawOperation(item) {
  if (item.op === 'delete') {
    const prefix = mustParsePrefix(item.destination);
    return {
      op: 'delete',
      reason: 'not-desired',
      route: {
        family: prefix.family,
        destination: formatPrefix(prefix),
        gateways: sortAddresses(item.gateways),
        protocol: item.protocol ?? protocol,
        metric: item.metric ?? (prefix.family === 4 ? 0 : 1024),
        type: 1,
      },
    };
  }
  const [route] = desiredMap([item]).values();
  return { op: item.op, reason: 'missing', route };
}

async function reconcile(desired) {
  const current = await table.listRoutes();
  const plan = planRouteChanges(desired, current, { protocol });
  const outcomes = await table.apply(plan.operations);
  return {
    operations: plan.operations.map(describe),
    blocked: plan.blocked.map((item) => ({ destination: item.route.key, by: item.by })),
    unchanged: plan.unchanged,
    failures: outcomes
      .filter((outcome) => !outcome.ok)
      .map((outcome) => ({ ...describe(outcome.operation), errno: outcome.errno, error: outcome.error })),
  };
}

const commands = {
  list: async () => (await table.listRoutes()).filter((route) => route.protocol === protocol || route.protocol === 4),
  addresses: async () =>
    (await table.listAddresses()).map((item) => ({ ...item, address: formatAddress(item.family, item.address) })),
  reconcile: async ({ desired }) => reconcile(desiredMap(desired)),
  apply: async ({ operations }) =>
    (await table.apply(operations.map(rawOperation))).map((outcome) => ({
      ok: outcome.ok,
      converged: outcome.converged,
      errno: outcome.errno,
      error: outcome.error,
    })),
  'monitor-start': async () => {
    monitor = RouteMonitor.start((event) => send({ event }));
    return 'started';
  },
  // Installs `count` host routes, then removes them, through the same plan + apply path the operator uses.
  bench: async ({ count, gateway }) => {
    const desired = [];
    for (let index = 0; index < count; index++) {
      desired.push({
        destination: `198.${18 + (index >> 16)}.${(index >> 8) & 255}.${index & 255}`,
        gateways: [gateway],
      });
    }
    const map = desiredMap(desired);
    const started = process.hrtime.bigint();
    const added = await reconcile(map);
    const addMs = Number(process.hrtime.bigint() - started) / 1e6;
    const listStarted = process.hrtime.bigint();
    const listed = (await table.listRoutes()).filter((route) => route.protocol === protocol).length;
    const listMs = Number(process.hrtime.bigint() - listStarted) / 1e6;
    const unchangedStarted = process.hrtime.bigint();
    const again = await reconcile(map);
    const noopMs = Number(process.hrtime.bigint() - unchangedStarted) / 1e6;
    const deleteStarted = process.hrtime.bigint();
    const removed = await reconcile(new Map());
    const deleteMs = Number(process.hrtime.bigint() - deleteStarted) / 1e6;
    return {
      count,
      listed,
      addMs,
      listMs,
      noopMs,
      deleteMs,
      addFailures: added.failures.length,
      deleteFailures: removed.failures.length,
      unchangedOnSecondPass: again.unchanged,
      operationsOnSecondPass: again.operations.length,
    };
  },
};

const running = new Set();
createInterface({ input: process.stdin }).on('line', (line) => {
  const request = JSON.parse(line);
  const done = (async () => {
    try {
      const result = await commands[request.cmd](request);
      send({ id: request.id, result });
    } catch (error) {
      send({ id: request.id, error: String(error?.stack ?? error) });
    }
  })();
  running.add(done);
  done.finally(() => running.delete(done));
});
process.stdin.on('end', async () => {
  while (running.size > 0) await Promise.all(running);
  monitor?.stop();
  table.close();
});
send({ ready: true });
