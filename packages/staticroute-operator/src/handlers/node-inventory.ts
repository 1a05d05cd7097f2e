/**
 * The cluster's Nodes as this operator instance needs them: its own labels (for `nodeSelector`) and every node's
 * labels (to count the nodes an object selects, for `status.ready`).
 *
 * A small list+watch loop over the framework's API client: list, watch from the list's resourceVersion, and on any
 * error or end of stream list again (after a capped, jittered backoff). Each (re)list replaces the whole map, so a
 * Node deleted while the watch was down does not linger.
 *
 * Why not the framework's own Nodes watcher: opkit does not expose it (nor its Watcher class) to handlers.
 */
import type { Logger } from 'opkit';
import type { KubeApi, KubeObject, ResourceRef } from 'opkit';

const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };

type Labels = Readonly<Record<string, string>>;

/** What changed, for the listener. */
export interface InventoryChange {
  /** This node's labels changed (or it appeared). */
  ownLabelsChanged: boolean;
}

export class NodeInventory {
  private readonly nodes = new Map<string, Labels>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  private constructor(
    private readonly api: KubeApi,
    private readonly nodeName: string,
    private readonly logger: Logger,
    private readonly onChange: (change: InventoryChange) => void,
  ) {}

  /**
   * Lists the Nodes (rejecting when that fails, e.g. without RBAC access) and keeps watching them; resolves once this
   * node's labels are known.
   */
  static async start(
    api: KubeApi,
    nodeName: string,
    logger: Logger,
    onChange: (change: InventoryChange) => void,
  ): Promise<NodeInventory> {
    const inventory = new NodeInventory(api, nodeName, logger, onChange);
    const first = await inventory.relist();
    inventory.loop = inventory.run(first);
    if (!inventory.nodes.has(nodeName)) {
      logger.warn({ node: nodeName }, 'no Node object with this name: nodeSelectors see no labels on this node');
    }
    return inventory;
  }

  /** This node's labels (empty when its Node object is missing). */
  ownLabels(): Labels {
    return this.nodes.get(this.nodeName) ?? {};
  }

  /** Names of all known nodes with their labels. */
  all(): ReadonlyMap<string, Labels> {
    return this.nodes;
  }

  private apply(type: 'upsert' | 'delete', node: KubeObject): void {
    const name = node.metadata.name;
    const before = this.nodes.get(name);
    if (type === 'delete') this.nodes.delete(name);
    else this.nodes.set(name, { ...(node.metadata.labels ?? {}) });
    const after = this.nodes.get(name);
    if (JSON.stringify(before) === JSON.stringify(after)) return;
    this.onChange({ ownLabelsChanged: name === this.nodeName });
  }

  /** Lists the Nodes and replaces the map; returns the list's resourceVersion. */
  private async relist(): Promise<string> {
    const list = await this.api.list<KubeObject>(NODES);
    const fresh = new Map(list.items.map((node) => [node.metadata.name, { ...(node.metadata.labels ?? {}) }]));
    const ownBefore = JSON.stringify(this.nodes.get(this.nodeName));
    const changed = JSON.stringify([...this.nodes]) !== JSON.stringify([...fresh]);
    this.nodes.clear();
    for (const [name, labels] of fresh) this.nodes.set(name, labels);
    if (changed) this.onChange({ ownLabelsChanged: ownBefore !== JSON.stringify(this.nodes.get(this.nodeName)) });
    return list.metadata.resourceVersion;
  }

  private async run(firstVersion: string): Promise<void> {
    let failures = 0;
    let resourceVersion: string | undefined = firstVersion;
    while (!this.abort.signal.aborted) {
      try {
        resourceVersion ??= await this.relist();
        failures = 0;
        // An ERROR event (e.g. 410 Gone) ends this stream; the loop then lists again.
        const stream = new AbortController();
        const onStop = () => stream.abort();
        this.abort.signal.addEventListener('abort', onStop, { once: true });
        let streamError: Error | undefined;
        await this.api
          .watch<KubeObject>(
            NODES,
            { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 },
            (event) => {
              if (event.type === 'BOOKMARK') resourceVersion = event.object.metadata.resourceVersion;
              else if (event.type === 'ADDED' || event.type === 'MODIFIED') this.apply('upsert', event.object);
              else if (event.type === 'DELETED') this.apply('delete', event.object);
              else if (event.type === 'ERROR') {
                streamError = new Error(`Nodes watch error: ${JSON.stringify(event.object)}`);
                stream.abort();
                return;
              }
              if (event.type !== 'BOOKMARK') resourceVersion = event.object.metadata.resourceVersion;
            },
            stream.signal,
          )
          .catch((error: unknown) => {
            if (!streamError) throw error;
          })
          .finally(() => this.abort.signal.removeEventListener('abort', onStop));
        if (streamError) throw streamError;
        // A normal end of the stream (server timeout): resume from where it stopped.
      } catch (error) {
        if (this.abort.signal.aborted) return;
        // Lists again after any failure: a 410 Gone or a broken stream may have lost events.
        resourceVersion = undefined;
        failures++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.8 + Math.random() * 0.4);
        this.logger.warn({ err: error, delayMs: Math.round(delay) }, 'Nodes list/watch failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop?.catch(() => undefined);
  }
}
