// A process that runs inside a node's network namespace and drives the netlink adapters for the healing, dump
// and monitor tests: JSON commands on stdin, JSON replies and events on stdout, one per line. Route notifications
// are counted here rather than streamed when a test makes thousands of them.
import { execFileSync } from 'node:child_process';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { RouteTable } from '../../../dist/adapters/route-table.js';
import { RouteMonitor } from '../../../dist/adapters/route-monitor.js';
import { formatAddress, formatPrefix, mustParsePrefix, sortAddresses } from '../../../dist/logic/ip.js';

const protocol = Number(process.env.ROUTE_PROTOCOL ?? 201);
let table;
let monitor;
let streamRoutes = true;
const routeEvents = { 'route-added': 0, 'route-deleted': 0 };
const tableEvents = { 'link-changed': 0, 'address-changed': 0, overflow: 0 };

const send = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

function adapterListener(source) {
  return (event) => {
    // Operation counts come back in the replies; everything else is what the tests watch.
    if (event.type !== 'operations') send({ adapter: { source, ...event } });
  };
}

function addOperation(destination, gateways) {
  const prefix = mustParsePrefix(destination);
  const key = formatPrefix(prefix);
  return {
    op: 'add',
    reason: 'missing',
    route: {
      key,
      destination: prefix,
      gateways: sortAddresses(gateways),
      owner: 'test',
      sharedWith: [],
      seedGateways: [],
    },
  };
}

function deleteOperation(destination, gateways) {
  const prefix = mustParsePrefix(destination);
  return {
    op: 'delete',
    reason: 'not-desired',
    route: {
      family: prefix.family,
      destination: formatPrefix(prefix),
      gateways: sortAddresses(gateways),
      protocol,
      metric: prefix.family === 4 ? 0 : 1024,
      type: 1,
    },
  };
}

/** Host routes 198.18.x.y/32 (benchmark range, never routed beyond the test bed). */
function hostDestinations(count, offset = 0) {
  const destinations = [];
  for (let index = offset; index < offset + count; index++) {
    destinations.push(`198.18.${(index >> 8) & 255}.${index & 255}/32`);
  }
  return destinations;
}

async function applySummary(operations) {
  const outcomes = await table.apply(operations);
  const failed = outcomes.filter((outcome) => !outcome.ok);
  return {
    ok: outcomes.length - failed.length,
    failures: failed.slice(0, 5).map((outcome) => `${outcome.errno}: ${outcome.error}`),
    failed: failed.length,
  };
}

const commands = {
  'open-table': async ({ options = {} }) => {
    table = RouteTable.open({ protocol, ...options });
    table.subscribe(adapterListener('table'));
    return table.health;
  },
  'open-monitor': async ({ options = {}, stream = true }) => {
    streamRoutes = stream;
    monitor = RouteMonitor.start(
      (event) => {
        if (event.kind === 'route-added' || event.kind === 'route-deleted') {
          routeEvents[event.kind]++;
          if (streamRoutes) send({ event });
        } else {
          tableEvents[event.kind]++;
          send({ event });
        }
      },
      { protocol, ...options },
    );
    monitor.subscribe(adapterListener('monitor'));
    await monitor.whenSynced();
    return monitor.health;
  },
  add: async ({ destinations, gateways }) =>
    applySummary(destinations.map((destination) => addOperation(destination, gateways))),
  delete: async ({ destinations, gateways }) =>
    applySummary(destinations.map((destination) => deleteOperation(destination, gateways))),
  'add-hosts': async ({ count, offset, gateways }) =>
    applySummary(hostDestinations(count, offset).map((destination) => addOperation(destination, gateways))),
  'delete-hosts': async ({ count, offset, gateways }) =>
    applySummary(hostDestinations(count, offset).map((destination) => deleteOperation(destination, gateways))),
  // Closes the table's socket under it, then (in the same turn, before any reopen) asks for routes: the request
  // waits for the new socket.
  'fail-table-socket': async ({ thenAdd }) => {
    table.failSocketForTesting();
    const health = table.health;
    const added = thenAdd ? await commands.add(thenAdd) : undefined;
    return { healthRightAfter: health, added };
  },
  'fail-monitor-socket': async () => {
    monitor.failSocketForTesting();
    return monitor.health;
  },
  // Reads the addresses until the table retried an interrupted dump; checks that every dump it returned holds each
  // address starting with `prefix` exactly once (`expected` of them).
  'dump-addresses-until-retried': async ({ prefix, expected, maxDumps }) => {
    let dumps = 0;
    let wrong = 0;
    let rejected = 0;
    const examples = [];
    while (dumps < maxDumps && table.stats.dumpRetries === 0) {
      dumps++;
      let addresses;
      try {
        addresses = await table.listAddresses();
      } catch (error) {
        rejected++;
        examples.push(String(error));
        continue;
      }
      const texts = addresses
        .map((item) => formatAddress(item.family, item.address))
        .filter((text) => text.startsWith(prefix));
      if (texts.length !== expected || new Set(texts).size !== expected) {
        wrong++;
        if (examples.length < 3) examples.push(`${texts.length} addresses, ${new Set(texts).size} distinct`);
      }
    }
    return { dumps, wrong, rejected, examples, stats: table.stats };
  },
  // Runs a command in this process, blocking its event loop: notifications pile up in the monitor's socket and are
  // read only afterwards.
  'run-blocking': async ({ argv }) => {
    execFileSync(argv[0], argv.slice(1), { stdio: 'ignore' });
    return 'done';
  },
  stats: async () => ({
    table: table ? { health: table.health, stats: table.stats } : undefined,
    monitor: monitor ? { health: monitor.health, stats: monitor.stats, synced: monitor.synced } : undefined,
    routeEvents,
    tableEvents,
  }),
};

const running = new Set();
createInterface({ input: process.stdin }).on('line', (line) => {
  const request = JSON.parse(line);
  const done = (async () => {
    try {
      send({ id: request.id, result: await commands[request.cmd](request) });
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
  table?.close();
});
send({ ready: true });
