/**
 * A cluster for the scale benchmarks: a real control plane with the release applied and simulated nodes, with the
 * credentials the release's pods would have. Unlike the e2e fixture it builds nothing (scripts/bench.sh builds once)
 * and leaves every timing to the release.
 */
import { startControlPlane, startNetwork, type ControlPlane, type SimNetwork, type SimNode } from '@opkit/testbed';
import { AGENT_SERVICE_ACCOUNT, AGGREGATOR_SERVICE_ACCOUNT, NAMESPACE, RELEASE } from './release.js';

export class BenchCluster {
  private readonly agentKubeconfigs = new Map<string, string>();
  private aggregatorKubeconfigPath: string | undefined;

  private constructor(
    readonly controlPlane: ControlPlane,
    readonly network: SimNetwork,
  ) {}

  /** Starts the control plane, applies the release and creates `nodes` nodes (and the two gateways). */
  static async start(nodes: number): Promise<BenchCluster> {
    const controlPlane = await startControlPlane();
    try {
      await controlPlane.kubectl(['apply', '-f', RELEASE]);
      await controlPlane.kubectl([
        'wait',
        '--for=condition=Established',
        'crd/staticroutes.networking.digitalocean.com',
        'crd/staticroutenodestatuses.networking.digitalocean.com',
      ]);
      const network = await startNetwork({ nodes, controlPlane });
      return new BenchCluster(controlPlane, network);
    } catch (error) {
      await controlPlane.stop();
      throw error;
    }
  }

  get nodes(): SimNode[] {
    return this.network.nodes;
  }

  /**
   * Kubeconfig (inside the node's namespace) with a token of the agents' ServiceAccount bound to a pod on `node`, as
   * the kubelet projects it: the admission policy lets the agent write only that node's report.
   */
  async agentKubeconfig(node: SimNode): Promise<string> {
    let kubeconfig = this.agentKubeconfigs.get(node.name);
    if (!kubeconfig) {
      const token = await this.controlPlane.mintToken(NAMESPACE, AGENT_SERVICE_ACCOUNT, {
        expirationSeconds: 4 * 3600,
        boundToPodOnNode: node.name,
      });
      kubeconfig = await this.network.nodeKubeconfig(token);
      this.agentKubeconfigs.set(node.name, kubeconfig);
    }
    return kubeconfig;
  }

  /** Kubeconfigs of every node's agent, by node name (minted a few at a time). */
  async agentKubeconfigsFor(nodes: readonly SimNode[]): Promise<Map<string, string>> {
    for (let index = 0; index < nodes.length; index += 10) {
      await Promise.all(nodes.slice(index, index + 10).map((node) => this.agentKubeconfig(node)));
    }
    return new Map(nodes.map((node) => [node.name, this.agentKubeconfigs.get(node.name) as string]));
  }

  /** Kubeconfig (on the host) with a token of the aggregator's ServiceAccount. */
  async aggregatorKubeconfig(): Promise<string> {
    if (!this.aggregatorKubeconfigPath) {
      const token = await this.controlPlane.mintToken(NAMESPACE, AGGREGATOR_SERVICE_ACCOUNT, {
        expirationSeconds: 4 * 3600,
      });
      this.aggregatorKubeconfigPath = await this.controlPlane.writeKubeconfig({ token });
    }
    return this.aggregatorKubeconfigPath;
  }

  async destroy(): Promise<void> {
    await this.network.destroy().catch(() => undefined);
    await this.controlPlane.stop().catch(() => undefined);
  }
}
