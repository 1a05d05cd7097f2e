/**
 * Small helper programs the test bed runs as separate Node processes. They are kept as source text (CommonJS, no
 * dependencies) and written to the test bed's folder on first use, because they must run under a plain `node`
 * both when this package is used from TypeScript sources (tests) and from its build.
 *
 * - reaper: watches one run's owner process and, when it dies without cleaning up (kill -9, crash), kills the run's
 *   processes, deletes its network namespaces and removes its folder. `sweep` mode does the same for every dead run.
 * - relay: runs inside the network's hub namespace, accepts TCP connections for the API server address and carries
 *   each one over a Unix socket (a file, so it crosses namespaces) to the forwarder. It knows each client's source
 *   address, which is how single nodes are cut off from the API server.
 * - forwarder: runs in the root namespace, accepts on that Unix socket and connects to the API server on loopback.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { testbedRoot } from './paths.js';

const reaperSource = String.raw`'use strict';
// opkit test bed reaper. Usage: reaper.cjs watch <runDir> | reaper.cjs sweep <root>
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

function startTime(pid) {
  try {
    const fields = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
    const stat = fields.slice(fields.lastIndexOf(')') + 2).split(' ');
    // A zombie has exited; only its parent has not collected it yet.
    return stat[0] === 'Z' || stat[0] === 'X' ? null : stat[19];
  } catch {
    return null;
  }
}
function readLines(file) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
// true: alive, false: dead, null: not known (no owner record).
function ownerAlive(runDir) {
  let owner;
  try {
    owner = JSON.parse(fs.readFileSync(path.join(runDir, 'owner.json'), 'utf8'));
  } catch {
    return null;
  }
  return startTime(owner.pid) === owner.startTime;
}
function kill(target) {
  try {
    process.kill(target, 'SIGKILL');
  } catch {}
}
function killRecorded(runDir) {
  for (const line of readLines(path.join(runDir, 'pids'))) {
    const [pid, started] = line.split(' ');
    if (startTime(pid) !== started) continue;
    kill(-Number(pid));
    kill(Number(pid));
  }
}
function deleteNetns(name) {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout || '';
  for (const pid of pids.split(/\s+/).filter(Boolean)) kill(Number(pid));
  spawnSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
}
function reap(runDir) {
  killRecorded(runDir);
  for (const name of readLines(path.join(runDir, 'netns'))) deleteNetns(name);
  fs.rmSync(runDir, { recursive: true, force: true });
}
function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}
function runIsDead(root, runId) {
  const alive = ownerAlive(path.join(root, runId));
  if (alive !== null) return !alive;
  return !pidAlive(Number(runId.split('-')[0]));
}

const [mode, target] = process.argv.slice(2);
if (mode === 'watch') {
  const timer = setInterval(() => {
    if (!fs.existsSync(target)) process.exit(0);
    if (ownerAlive(target) === false) {
      clearInterval(timer);
      reap(target);
      process.exit(0);
    }
  }, 250);
} else if (mode === 'sweep') {
  const root = target;
  const reaped = [];
  let entries = [];
  try {
    entries = fs.readdirSync(root).filter((name) => /^\d+-[a-z0-9]+$/.test(name));
  } catch {}
  for (const runId of entries) {
    if (runIsDead(root, runId)) {
      reap(path.join(root, runId));
      reaped.push('run ' + runId);
    }
  }
  const namespaces = (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout || '')
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => /^otb-\d+-[a-z0-9]+-/.test(name));
  for (const name of namespaces) {
    const runId = name.split('-').slice(1, 3).join('-');
    if (runIsDead(root, runId)) {
      deleteNetns(name);
      reaped.push('netns ' + name);
    }
  }
  for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    if (Number(pid) === process.pid) continue;
    let cmdline = '';
    try {
      cmdline = fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8');
    } catch {
      continue;
    }
    const prefix = root + '/';
    for (let at = cmdline.indexOf(prefix); at >= 0; at = cmdline.indexOf(prefix, at + 1)) {
      const runId = /^(\d+-[a-z0-9]+)/.exec(cmdline.slice(at + prefix.length));
      if (runId && runIsDead(root, runId[1])) {
        kill(Number(pid));
        reaped.push('process ' + pid);
        break;
      }
    }
  }
  process.stdout.write(JSON.stringify(reaped) + '\n');
} else {
  process.stderr.write('usage: reaper.cjs watch <runDir> | sweep <root>\n');
  process.exit(2);
}
`;

const relaySource = String.raw`'use strict';
// opkit test bed relay (runs in the hub namespace). Usage: relay.cjs <runDir> <unixSocket> <port> <address>...
// stdin commands: "block <seq> <ip>..." / "unblock <seq> <ip>..."; answers "ok <seq>". Exits when stdin closes.
const net = require('node:net');
const [runDir, socketPath, port, ...addresses] = process.argv.slice(2);
const blocked = new Set();
const connections = new Set();
const plain = (ip) => (ip && ip.startsWith('::ffff:') ? ip.slice(7) : ip || '');

function onConnection(client) {
  const source = plain(client.remoteAddress);
  if (blocked.has(source)) {
    client.resetAndDestroy();
    return;
  }
  const upstream = net.connect(socketPath);
  const entry = { client, upstream, source };
  connections.add(entry);
  const close = () => {
    connections.delete(entry);
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  client.pipe(upstream);
  upstream.pipe(client);
}

let listening = 0;
for (const address of addresses) {
  net
    .createServer(onConnection)
    .on('error', (error) => {
      process.stderr.write('relay: ' + error.message + '\n');
      process.exit(1);
    })
    .listen(Number(port), address, () => {
      listening += 1;
      if (listening === addresses.length) process.stdout.write('ready\n');
    });
}

let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  pending += chunk;
  let newline;
  while ((newline = pending.indexOf('\n')) >= 0) {
    const [verb, seq, ...ips] = pending.slice(0, newline).trim().split(/\s+/);
    pending = pending.slice(newline + 1);
    for (const ip of ips) {
      if (verb === 'block') blocked.add(ip);
      else blocked.delete(ip);
    }
    if (verb === 'block') {
      for (const entry of connections) {
        if (!blocked.has(entry.source)) continue;
        connections.delete(entry);
        entry.client.resetAndDestroy();
        entry.upstream.destroy();
      }
    }
    process.stdout.write('ok ' + seq + '\n');
  }
});
process.stdin.on('end', () => process.exit(0));
void runDir;
`;

const forwarderSource = String.raw`'use strict';
// opkit test bed forwarder (root namespace). Usage: forwarder.cjs <runDir> <unixSocket> <host> <port>
const net = require('node:net');
const fs = require('node:fs');
const [runDir, socketPath, host, port] = process.argv.slice(2);
fs.rmSync(socketPath, { force: true });
const server = net.createServer((client) => {
  const upstream = net.connect(Number(port), host);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  client.pipe(upstream);
  upstream.pipe(client);
});
server.listen(socketPath, () => process.stdout.write('ready\n'));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
void runDir;
`;

const sources = { reaper: reaperSource, relay: relaySource, forwarder: forwarderSource } as const;

/** Name of one of the helper programs. */
export type HelperName = keyof typeof sources;

/** Writes the helper's source to the test bed's folder (once per content) and returns its path. */
export function helperScriptPath(name: HelperName): string {
  const source = sources[name];
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 10);
  const directory = path.join(testbedRoot(), '.bin');
  const file = path.join(directory, `${name}-${digest}.cjs`);
  if (!existsSync(file)) {
    mkdirSync(directory, { recursive: true });
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, source, { mode: 0o644 });
    renameSync(temporary, file);
  }
  return file;
}
