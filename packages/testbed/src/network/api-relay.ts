/**
 * The path from node namespaces to the API server, which listens on 127.0.0.1 in the root namespace:
 * node --TCP--> relay (hub namespace, 10.116.0.1:6443) --Unix socket--> forwarder (root namespace) --TCP-->
 * 127.0.0.1:<api port>. No route, forwarding or NAT is needed anywhere, and the relay sees each client's source
 * address, which is how one node is cut off from the API server while its links and routes stay as they are.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { API_RELAY_PORT, HUB_ADDRESS_V4, HUB_ADDRESS_V6 } from '../constants.js';
import { helperScriptPath } from '../lifetime/helper-scripts.js';
import type { RunScope } from '../lifetime/run-scope.js';

function waitForReadyLine(child: ChildProcess, name: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    );
    const onExit = (): void => {
      clearTimeout(timer);
      // Give stderr a moment to arrive so the error says why.
      setTimeout(() => reject(new Error(`${name} exited at start: ${stderr.trim()}`)), 50);
    };
    child.once('exit', onExit);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      if (line.trim() === 'ready') resolve();
      else reject(new Error(`${name} said ${line}`));
    });
  });
}

/** The running relay and forwarder of one network. */
export class ApiRelay {
  private sequence = 0;
  private readonly pending = new Map<number, () => void>();

  private constructor(private readonly relay: ChildProcess) {
    createInterface({ input: relay.stdout! }).on('line', (line) => {
      const [word, seq] = line.trim().split(' ');
      if (word !== 'ok') return;
      const done = this.pending.get(Number(seq));
      this.pending.delete(Number(seq));
      done?.();
    });
  }

  /**
   * Starts the forwarder (towards `apiHost:apiPort`) and the relay inside `hubNetns`. Both exit when their stdin
   * closes, i.e. when the test process goes away.
   */
  static async start(scope: RunScope, hubNetns: string, apiHost: string, apiPort: number): Promise<ApiRelay> {
    const socketPath = path.join(scope.dir, 'api.sock');
    const forwarder = scope.spawn(
      [process.execPath, helperScriptPath('forwarder'), scope.dir, socketPath, apiHost, String(apiPort)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    await waitForReadyLine(forwarder, 'API forwarder');
    const relay = scope.spawn(
      [
        process.execPath,
        helperScriptPath('relay'),
        scope.dir,
        socketPath,
        String(API_RELAY_PORT),
        HUB_ADDRESS_V4,
        HUB_ADDRESS_V6,
      ],
      { netns: hubNetns, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    await waitForReadyLine(relay, 'API relay');
    return new ApiRelay(relay);
  }

  /** Resets open connections from `addresses` and refuses new ones until {@link unblock}. */
  block(addresses: string[]): Promise<void> {
    return this.command('block', addresses);
  }

  unblock(addresses: string[]): Promise<void> {
    return this.command('unblock', addresses);
  }

  private command(verb: string, addresses: string[]): Promise<void> {
    this.sequence += 1;
    const seq = this.sequence;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`API relay did not confirm ${verb}`)), 10_000);
      this.pending.set(seq, () => {
        clearTimeout(timer);
        resolve();
      });
      this.relay.stdin?.write(`${verb} ${seq} ${addresses.join(' ')}\n`);
    });
  }
}
