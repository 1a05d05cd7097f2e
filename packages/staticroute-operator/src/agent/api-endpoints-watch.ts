/**
 * Follows the API server's real endpoints for the agent's safety rules: the `default/kubernetes` EndpointSlices
 * (watched), and the host of the server this agent itself connects to (resolved at start and at every periodic pass:
 * a kubeconfig may name the API server by a host name). A change triggers a full pass, so a route that would now
 * capture an endpoint is withdrawn at once.
 */
import { lookup } from 'node:dns/promises';
import { Watcher, type KubeApi, type KubeObject, type Logger, type ResourceRef } from 'opkit';
import {
  API_SERVER_SERVICE,
  endpointAddresses,
  SERVICE_NAME_LABEL,
  type EndpointSliceLike,
} from '../logic/api-endpoints.js';
import { formatPrefix, hostPrefix, parseAddress, type Prefix } from '../logic/ip.js';

const ENDPOINT_SLICES: ResourceRef = {
  group: 'discovery.k8s.io',
  version: 'v1',
  plural: 'endpointslices',
  namespaced: true,
};

/** How long the agent's start waits for the first list before it programs routes without the endpoints. */
const FIRST_LIST_WAIT_MS = 10_000;

export class ApiEndpointsWatch {
  private readonly watcher: Watcher;
  private current: Prefix[] = [];
  /** Addresses of the API server host this agent connects to. */
  private serverAddresses: Prefix[] = [];
  private fingerprint = '';
  private syncedOnce: Promise<void>;
  private resolveSynced!: () => void;

  constructor(
    private readonly api: KubeApi,
    private readonly logger: Logger,
    private readonly onChange: () => void,
  ) {
    this.watcher = new Watcher(api, {
      ref: ENDPOINT_SLICES,
      namespace: API_SERVER_SERVICE.namespace,
      labelSelector: `${SERVICE_NAME_LABEL}=${API_SERVER_SERVICE.name}`,
      logger,
    });
    this.syncedOnce = new Promise((resolve) => (this.resolveSynced = resolve));
  }

  /** The endpoint addresses known now. */
  get addresses(): readonly Prefix[] {
    return this.current;
  }

  /**
   * Starts watching and waits for the first list, at most 10 s: without it (RBAC, an API outage) routes are still
   * programmed, protected by the configured addresses only, and the endpoints apply as soon as they are known.
   */
  async start(): Promise<void> {
    this.watcher.start((event) => {
      if (event.type === 'synced') this.resolveSynced();
      this.refresh();
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), FIRST_LIST_WAIT_MS)));
    const late = await Promise.race([this.syncedOnce.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) this.logger.warn('API server endpoints not listed yet: protecting the configured addresses only for now');
    await this.resolveServer();
  }

  /**
   * Resolves the host of the API server URL this agent uses (an IP literal as is, a name through the system resolver).
   * A failed lookup keeps the addresses known before.
   */
  async resolveServer(): Promise<void> {
    const server = this.api.server;
    if (!server) return;
    let host: string;
    try {
      host = new URL(server).hostname.replace(/^\[|\]$/g, '');
    } catch {
      return;
    }
    let texts: string[];
    const literal = parseAddress(host);
    if (literal) texts = [host];
    else {
      try {
        texts = (await lookup(host, { all: true })).map((entry) => entry.address);
      } catch (error) {
        this.logger.warn(
          { host, err: error instanceof Error ? error.message : String(error) },
          'cannot resolve the API server host',
        );
        return;
      }
    }
    this.serverAddresses = texts.flatMap((text) => {
      const parsed = parseAddress(text);
      return parsed ? [hostPrefix(parsed.family, parsed.address)] : [];
    });
    this.refresh();
  }

  stop(): Promise<void> {
    return this.watcher.stop();
  }

  private refresh(): void {
    const fromSlices = endpointAddresses(
      [...this.watcher.store.values()].map((slice: KubeObject) => slice as unknown as EndpointSliceLike),
    );
    const seen = new Set(fromSlices.map(formatPrefix));
    const addresses = [...fromSlices, ...this.serverAddresses.filter((prefix) => !seen.has(formatPrefix(prefix)))];
    const fingerprint = addresses.map(formatPrefix).join(',');
    if (fingerprint === this.fingerprint) return;
    this.fingerprint = fingerprint;
    this.current = addresses;
    this.logger.info({ endpoints: fingerprint }, 'API server endpoints protected');
    this.onChange();
  }
}
