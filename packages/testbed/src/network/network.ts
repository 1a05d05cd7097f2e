/**
 * The simulated VPC: per run, a hub namespace holding a Linux bridge, and one namespace per node and per gateway,
 * each joined to the bridge by a veth pair created directly between the two namespaces. Nothing of it exists in the
 * root namespace, so parallel runs with the same addresses never collide and the host's routing stays untouched.
 */
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { requireTools, runCommand } from '../exec.js';
import {
  DEFAULT_GATEWAYS,
  FIRST_NODE_HOST,
  HUB_ADDRESS_V4,
  HUB_ADDRESS_V6,
  API_RELAY_PORT,
  VPC_SUBNET_V4,
  VPC_SUBNET_V6,
} from '../constants.js';
import type { ControlPlane } from '../control-plane/control-plane.js';
import { RunScope } from '../lifetime/run-scope.js';
import {
  assertAllowedDestination,
  cidrWithin,
  hostedAddress,
  ipv4ToNumber,
  ipv6TwinOf,
  numberToIpv4,
} from './addresses.js';
import { ApiRelay } from './api-relay.js';
import { NamespaceHost, type SimHost } from './host.js';

/** A simulated Kubernetes node. */
export type SimNode = SimHost;
/** A simulated gateway host (answers ping; may host documentation-range destinations for traffic tests). */
export type SimGateway = SimHost;

/** Options of {@link startNetwork}. */
export interface StartNetworkOptions {
  /** How many nodes (named `node-1`, `node-2`, ...) or their names (DNS labels). */
  nodes: number | string[];
  /** Gateway addresses inside 10.116.0.0/20. Defaults to 10.116.0.5 and 10.116.0.12. */
  gateways?: string[];
  /**
   * When given, a Node object is registered per node (label `kubernetes.io/hostname`, InternalIP addresses, Ready)
   * and nodes reach this API server at {@link SimNetwork.apiServerUrl}.
   */
  controlPlane?: ControlPlane;
  /**
   * CIDRs every gateway hosts on its loopback, so that node -> gateway traffic has a destination. Only inside
   * 198.51.100.0/24, 203.0.113.0/24 or 2001:db8::/32 (documentation ranges).
   */
  gatewayDestinations?: string[];
}

/** A running simulated network. */
export interface SimNetwork {
  /** Short id carried by every namespace name (`otb-<runId>-...`). */
  readonly runId: string;
  /** 10.116.0.0/20 */
  readonly subnet: string;
  /** fd00:116::/64 */
  readonly subnetV6: string;
  /** URL of the API server as seen from inside node namespaces: https://10.116.0.1:6443. */
  readonly apiServerUrl: string;
  /** Current nodes (a live view: addNode/removeNode change it). */
  readonly nodes: SimNode[];
  readonly gateways: SimGateway[];
  /** The node named `name`; throws when there is none. */
  node(name: string): SimNode;
  /** Kubeconfig for use inside node namespaces (server {@link apiServerUrl}); the admin token when none is given. */
  nodeKubeconfig(token?: string): Promise<string>;
  /** Adds a node (next free address; named `node-<n>` unless named). */
  addNode(name?: string): Promise<SimNode>;
  /** Kills the node's processes, deletes its Node object and its namespace. */
  removeNode(name: string): Promise<void>;
  /** Cuts the node off from the API server: open connections are reset, new ones refused. Links and routes stay. */
  blockApi(nodeName: string): Promise<void>;
  unblockApi(nodeName: string): Promise<void>;
  /** Removes everything: processes, Node objects (when the API server still answers), namespaces, files. */
  destroy(): Promise<void>;
}

const bridge = 'br0';

/** What this process may do: `ip netns add` needs CAP_SYS_ADMIN, links and addresses CAP_NET_ADMIN. */
function assertPrivileges(): void {
  const status = readFileSync('/proc/self/status', 'utf8');
  const effective = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(status)?.[1] ?? '0'}`);
  const missing = [
    ['CAP_NET_ADMIN', 12n],
    ['CAP_SYS_ADMIN', 21n],
  ]
    .filter(([, bit]) => (effective & (1n << (bit as bigint))) === 0n)
    .map(([name]) => name);
  if (missing.length > 0) {
    throw new Error(
      `the test bed network needs ${missing.join(' and ')} (run the tests as root): network namespaces, veth ` +
        'pairs and bridges cannot be created without them',
    );
  }
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$/;

class Network implements SimNetwork {
  readonly subnet = VPC_SUBNET_V4;
  readonly subnetV6 = VPC_SUBNET_V6;
  readonly apiServerUrl = `https://${HUB_ADDRESS_V4}:${API_RELAY_PORT}`;
  readonly nodes: NamespaceHost[] = [];
  readonly gateways: NamespaceHost[] = [];
  private readonly usedAddresses = new Set<string>([HUB_ADDRESS_V4]);
  private linkCounter = 0;
  private nodeCounter = 0;
  private kubeconfigCounter = 0;
  private relay: ApiRelay | undefined;
  private destroyed = false;

  constructor(
    private readonly scope: RunScope,
    private readonly hub: string,
    private readonly controlPlane: ControlPlane | undefined,
  ) {}

  get runId(): string {
    return this.scope.runId;
  }

  async createHub(): Promise<void> {
    this.scope.recordNetns(this.hub);
    await runCommand(['ip', 'netns', 'add', this.hub]);
    await runCommand(['ip', '-n', this.hub, '-batch', '-'], {
      input: [
        'link set lo up',
        // No STP and no forwarding delay: a port forwards as soon as it is up.
        `link add ${bridge} type bridge stp_state 0 forward_delay 0`,
        `addr add ${HUB_ADDRESS_V4}/20 dev ${bridge}`,
        `addr add ${HUB_ADDRESS_V6}/64 dev ${bridge} nodad`,
        `link set ${bridge} up`,
        '',
      ].join('\n'),
    });
    if (this.controlPlane) {
      const url = new URL(this.controlPlane.server);
      this.relay = await ApiRelay.start(this.scope, this.hub, url.hostname, Number(url.port));
    }
  }

  /** Creates a namespace with eth0 on the bridge and the given addresses. */
  private async createHost(netns: string, name: string, address: string): Promise<NamespaceHost> {
    const addressV6 = ipv6TwinOf(address);
    this.linkCounter += 1;
    const hubSide = `p${this.linkCounter}`;
    this.scope.recordNetns(netns);
    await runCommand(['ip', 'netns', 'add', netns]);
    await runCommand([
      'ip',
      '-n',
      this.hub,
      'link',
      'add',
      hubSide,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      netns,
    ]);
    await runCommand(['ip', '-n', this.hub, 'link', 'set', hubSide, 'master', bridge, 'up']);
    await runCommand(['ip', '-n', netns, '-batch', '-'], {
      input: [
        'link set lo up',
        `addr add ${address}/20 dev eth0`,
        `addr add ${addressV6}/64 dev eth0 nodad`,
        'link set eth0 up',
        '',
      ].join('\n'),
    });
    this.usedAddresses.add(address);
    return new NamespaceHost(this.scope, name, netns, address, addressV6);
  }

  async addGateway(address: string, index: number, destinations: string[]): Promise<void> {
    if (!cidrWithin(`${address}/32`, VPC_SUBNET_V4) || this.usedAddresses.has(address)) {
      throw new Error(`gateway address ${address} is not a free address in ${VPC_SUBNET_V4}`);
    }
    const gateway = await this.createHost(this.scope.netnsName(`gw${index}`), `gateway-${index}`, address);
    for (const destination of destinations) {
      const family = destination.includes(':') ? '-6' : '-4';
      await gateway.exec(['ip', family, 'addr', 'add', hostedAddress(destination), 'dev', 'lo']);
    }
    this.gateways.push(gateway);
  }

  private nextNodeAddress(): string {
    const base = ipv4ToNumber('10.116.0.0');
    for (let host = FIRST_NODE_HOST; host < 4095; host += 1) {
      const candidate = numberToIpv4(base + host);
      if (!this.usedAddresses.has(candidate)) return candidate;
    }
    throw new Error(`no free address left in ${VPC_SUBNET_V4}`);
  }

  node(name: string): NamespaceHost {
    const found = this.nodes.find((node) => node.name === name);
    if (!found) throw new Error(`no node named ${name} (nodes: ${this.nodes.map((node) => node.name).join(', ')})`);
    return found;
  }

  async addNode(name?: string): Promise<SimNode> {
    if (this.destroyed) throw new Error('the network is destroyed');
    let nodeName = name;
    while (nodeName === undefined || (name === undefined && this.nodes.some((node) => node.name === nodeName))) {
      this.nodeCounter += 1;
      nodeName = `node-${this.nodeCounter}`;
    }
    if (!dnsLabel.test(nodeName)) throw new Error(`node name ${nodeName} is not a DNS label of at most 42 characters`);
    if (this.nodes.some((node) => node.name === nodeName)) throw new Error(`node ${nodeName} exists already`);
    const node = await this.createHost(this.scope.netnsName(`n-${nodeName}`), nodeName, this.nextNodeAddress());
    this.nodes.push(node);
    if (this.controlPlane) await this.registerNode(node);
    return node;
  }

  private async registerNode(node: NamespaceHost): Promise<void> {
    const controlPlane = this.controlPlane!;
    const created = await controlPlane.request('POST', '/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: node.name,
        labels: {
          'kubernetes.io/hostname': node.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
        },
      },
    });
    if (created.status !== 201 && created.status !== 409) {
      throw new Error(`creating Node ${node.name} answered ${created.status}: ${created.text}`);
    }
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const status = await controlPlane.request('PATCH', `/api/v1/nodes/${node.name}/status`, {
      status: {
        addresses: [
          { type: 'InternalIP', address: node.address },
          { type: 'InternalIP', address: node.addressV6 },
          { type: 'Hostname', address: node.name },
        ],
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'TestbedNode',
            message: 'simulated by @opkit/testbed',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
    });
    if (status.status !== 200) throw new Error(`setting status of Node ${node.name} answered ${status.status}`);
  }

  async removeNode(name: string): Promise<void> {
    const node = this.node(name);
    this.nodes.splice(this.nodes.indexOf(node), 1);
    await node.killProcesses();
    if (this.controlPlane) {
      const deleted = await this.controlPlane.request('DELETE', `/api/v1/nodes/${name}`);
      if (deleted.status !== 200 && deleted.status !== 404) {
        throw new Error(`deleting Node ${name} answered ${deleted.status}: ${deleted.text}`);
      }
    }
    await this.scope.deleteNetns(node.netns);
    this.usedAddresses.delete(node.address);
  }

  async nodeKubeconfig(token?: string): Promise<string> {
    if (!this.controlPlane) throw new Error('nodeKubeconfig needs a network started with a controlPlane');
    this.kubeconfigCounter += 1;
    return this.controlPlane.writeKubeconfig({
      token: token ?? this.controlPlane.adminToken,
      server: this.apiServerUrl,
      path: path.join(this.scope.dir, `node-kubeconfig-${this.kubeconfigCounter}.yaml`),
    });
  }

  private relayFor(nodeName: string): { relay: ApiRelay; addresses: string[] } {
    if (!this.relay) throw new Error('blockApi/unblockApi need a network started with a controlPlane');
    const node = this.node(nodeName);
    return { relay: this.relay, addresses: [node.address, node.addressV6] };
  }

  blockApi(nodeName: string): Promise<void> {
    const { relay, addresses } = this.relayFor(nodeName);
    return relay.block(addresses);
  }

  unblockApi(nodeName: string): Promise<void> {
    const { relay, addresses } = this.relayFor(nodeName);
    return relay.unblock(addresses);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all(this.nodes.map((node) => node.killProcesses()));
    if (this.controlPlane) {
      // Best effort: the control plane may already be stopped.
      await Promise.all(
        this.nodes.map((node) =>
          this.controlPlane!.request('DELETE', `/api/v1/nodes/${node.name}`).catch(() => undefined),
        ),
      );
    }
    this.nodes.length = 0;
    this.gateways.length = 0;
    await this.scope.dispose();
  }
}

/**
 * Builds the simulated network: hub + bridge, gateways, nodes (and their Node objects when a control plane is
 * given), and the relay that lets nodes reach the API server. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
 * On failure everything created so far is removed.
 */
export async function startNetwork(opts: StartNetworkOptions): Promise<SimNetwork> {
  assertPrivileges();
  await requireTools([
    { command: ['ip', '-V'], debianPackage: 'iproute2' },
    { command: ['setpriv', '--version'], debianPackage: 'util-linux' },
  ]);
  const destinations = opts.gatewayDestinations ?? [];
  destinations.forEach(assertAllowedDestination);
  const scope = RunScope.create('network');
  const network = new Network(scope, scope.netnsName('hub'), opts.controlPlane);
  try {
    await network.createHub();
    const gateways = opts.gateways ?? DEFAULT_GATEWAYS;
    for (const [index, address] of gateways.entries()) await network.addGateway(address, index + 1, destinations);
    const names = typeof opts.nodes === 'number' ? new Array<undefined>(opts.nodes).fill(undefined) : opts.nodes;
    for (const name of names) await network.addNode(name);
    return network;
  } catch (error) {
    await network.destroy();
    throw error;
  }
}
