// Runs the operator's GatewayProber inside a node's network namespace on behalf of a test: JSON commands on stdin
// (setTargets, snapshot, stats, failRequests, close), one JSON line per reply and per state change on stdout.
import process from 'node:process';
import { createInterface } from 'node:readline';
import { GatewayProber } from '../../../dist/adapters/gateway-prober.js';

const send = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
const log = (level) => (fields, message) => {
  if (level !== 'debug') process.stderr.write(`${level} ${message ?? ''} ${JSON.stringify(fields)}\n`);
};
const logger = { info: log('info'), debug: log('debug'), warn: log('warn'), error: log('error') };
logger.child = () => logger;

const thresholds = JSON.parse(process.env.GATEWAY_THRESHOLDS ?? '{}');
const prober = await GatewayProber.open({
  thresholds,
  logger,
  onChange: (gateway, state, reason) => send({ change: { gateway, state, reason, at: Date.now() } }),
});

createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, method, args } = JSON.parse(line);
  try {
    let result = null;
    if (method === 'setTargets') prober.setTargets(args);
    else if (method === 'snapshot') result = Object.fromEntries(prober.snapshot());
    else if (method === 'stats') result = prober.stats();
    else if (method === 'failRequests') prober.failRequestsForTesting(args);
    else if (method === 'close') await prober.close();
    else throw new Error(`unknown method ${method}`);
    send({ id, result });
    if (method === 'close') process.exit(0);
  } catch (error) {
    send({ id, error: String(error?.stack ?? error) });
  }
});
send({ ready: true, now: Date.now() });
