/**
 * A seeded churn driver: creates, patches (destinations and gateways) and deletes good StaticRoutes while faults
 * happen, and keeps a model of what every node's table must hold afterwards.
 *
 * Every object owns its own slice of 34.0.0.0/8 (`34.<a>.<b>.0/24`, from its serial number), so objects never
 * conflict and the desired table is simply the union of the live objects' routes. Names are never reused, so a
 * create that is retried after a lost response (409) and a delete retried after one (404) are both unambiguous.
 * Requests ride out API server and etcd restarts: transport errors, 5xx and 429 are retried until a deadline.
 */
import type { E2eCluster } from '../../e2e/support/cluster.js';
import { seededRandom, type Random } from './random.js';

const BASE = '/apis/networking.digitalocean.com/v1/staticroutes';

/** Options of {@link Churn}. */
export interface ChurnOptions {
  seed: number;
  /** Next hops to choose from (single gateway or ECMP over all of them). */
  gateways: readonly string[];
  /** Name prefix (default `churn`). */
  prefix?: string;
  /** Live objects kept at most (default 12). */
  maxLive?: number;
  /** Destinations per object: 1..maxDestinations (default 3). */
  maxDestinations?: number;
  /** Pause between operations of {@link Churn.run}, in ms, drawn from [min, max] (default [50, 250]). */
  pauseMs?: readonly [number, number];
  /** Deadline of one request across outages (default 120 s). */
  requestDeadlineMs?: number;
  /** Serial number of the first object (to keep several drivers apart). */
  firstSerial?: number;
}

/** A live object as the model knows it. */
export interface ModelObject {
  name: string;
  serial: number;
  destinations: string[];
  /** Sorted next hops; one element for `spec.gateway`. */
  hops: string[];
  ecmp: boolean;
  /** Spec changes sent after the create. */
  patches: number;
}

/** Counters of what was done. */
export interface ChurnCounts {
  create: number;
  patchDestinations: number;
  patchGateway: number;
  delete: number;
  /** Requests repeated because of an outage. */
  retriedRequests: number;
}

/** Result of a request that survived outages. */
interface Answer {
  status: number;
  body: unknown;
}

/** How often one route (`dst via gw[,gw]`) became wanted, and how often it stopped being wanted. */
export interface RouteTransitions {
  entered: number;
  left: number;
}

export class Churn {
  readonly live = new Map<string, ModelObject>();
  readonly deleted: string[] = [];
  /** Every destination (normalized) any object of this driver ever asked for. */
  readonly everDesired = new Set<string>();
  /**
   * Per route line (as {@link expectedRoutes} writes them), its transitions in the model: a node that applies each
   * change once adds a route at most as often as it entered, and deletes it at most as often as it left.
   */
  readonly transitions = new Map<string, RouteTransitions>();
  readonly counts: ChurnCounts = { create: 0, patchDestinations: 0, patchGateway: 0, delete: 0, retriedRequests: 0 };
  private readonly random: Random;
  private readonly busy = new Set<string>();
  private serial: number;

  constructor(
    private readonly cluster: E2eCluster,
    private readonly options: ChurnOptions,
  ) {
    this.random = seededRandom(options.seed);
    this.serial = options.firstSerial ?? 0;
  }

  /** Spec changes sent (each one a change every node must handle once). */
  get changes(): number {
    return this.counts.patchDestinations + this.counts.patchGateway;
  }

  /** Runs `operations` operations one after the other; `onStep(i)` runs after each. */
  async run(operations: number, onStep?: (index: number) => Promise<void> | void): Promise<void> {
    const [min, max] = this.options.pauseMs ?? [50, 250];
    for (let index = 0; index < operations; index++) {
      await this.step();
      await onStep?.(index);
      await sleep(this.random.int(min, max));
    }
  }

  /** One random operation (create, patch destinations, patch gateway, delete); resolves with what it did. */
  async step(): Promise<string> {
    const maxLive = this.options.maxLive ?? 12;
    const idle = [...this.live.values()].filter((object) => !this.busy.has(object.name));
    const roll = this.random.next();
    if (idle.length < 2 || (this.live.size < maxLive && roll < 0.35)) return this.create();
    const target = this.random.pick(idle);
    if (roll < 0.6) return this.patchDestinations(target);
    if (roll < 0.8) return this.patchGateway(target);
    return this.remove(target);
  }

  /** Creates one object. */
  async create(): Promise<string> {
    const serial = this.serial++;
    const name = `${this.options.prefix ?? 'churn'}-${serial}`;
    const object: ModelObject = {
      name,
      serial,
      destinations: this.pickDestinations(serial),
      hops: [],
      ecmp: false,
      patches: 0,
    };
    this.chooseHops(object);
    this.live.set(name, object);
    this.changed([], routeLines(object));
    this.busy.add(name);
    try {
      await this.request('POST', BASE, this.manifest(object), [201, 409]);
      this.counts.create++;
    } finally {
      this.busy.delete(name);
    }
    return `create ${name}`;
  }

  async patchDestinations(object: ModelObject): Promise<string> {
    let next = this.pickDestinations(object.serial);
    while (sameSet(next, object.destinations)) next = this.pickDestinations(object.serial);
    const before = routeLines(object);
    object.destinations = next;
    this.changed(before, routeLines(object));
    object.patches++;
    await this.withBusy(object, () =>
      this.request('PATCH', `${BASE}/${object.name}`, { spec: { destinations: next } }, [200]),
    );
    this.counts.patchDestinations++;
    return `patch destinations ${object.name}`;
  }

  async patchGateway(object: ModelObject): Promise<string> {
    const before = JSON.stringify([object.hops, object.ecmp]);
    const lines = routeLines(object);
    while (JSON.stringify([object.hops, object.ecmp]) === before) this.chooseHops(object);
    this.changed(lines, routeLines(object));
    object.patches++;
    const spec = object.ecmp ? { gateways: object.hops, gateway: null } : { gateway: object.hops[0], gateways: null };
    await this.withBusy(object, () => this.request('PATCH', `${BASE}/${object.name}`, { spec }, [200]));
    this.counts.patchGateway++;
    return `patch gateway ${object.name}`;
  }

  async remove(object: ModelObject): Promise<string> {
    this.live.delete(object.name);
    this.changed(routeLines(object), []);
    this.deleted.push(object.name);
    await this.withBusy(object, () => this.request('DELETE', `${BASE}/${object.name}`, undefined, [200, 202, 404]));
    this.counts.delete++;
    return `delete ${object.name}`;
  }

  /** Deletes one idle live object, if there is one (e.g. right when a fault strikes). */
  async removeAny(): Promise<string | undefined> {
    const idle = [...this.live.values()].filter((object) => !this.busy.has(object.name));
    return idle.length === 0 ? undefined : this.remove(this.random.pick(idle));
  }

  /** Every route the nodes must hold, as `dst via gw[,gw]` (the fixture's {@link describeRoute} format), sorted. */
  expectedRoutes(): string[] {
    return [...this.live.values()].flatMap(routeLines).sort();
  }

  /** Records the transitions of one change of the model. */
  private changed(before: readonly string[], after: readonly string[]): void {
    const count = (line: string) => {
      let transitions = this.transitions.get(line);
      if (!transitions) this.transitions.set(line, (transitions = { entered: 0, left: 0 }));
      return transitions;
    };
    for (const line of after) if (!before.includes(line)) count(line).entered++;
    for (const line of before) if (!after.includes(line)) count(line).left++;
  }

  /** The object as sent on create. */
  manifest(object: ModelObject): Record<string, unknown> {
    const spec = object.ecmp
      ? { destinations: object.destinations, gateways: object.hops }
      : { destinations: object.destinations, gateway: object.hops[0] };
    return { apiVersion: 'networking.digitalocean.com/v1', kind: 'StaticRoute', metadata: { name: object.name }, spec };
  }

  private async withBusy<T>(object: ModelObject, action: () => Promise<T>): Promise<T> {
    this.busy.add(object.name);
    try {
      return await action();
    } finally {
      this.busy.delete(object.name);
    }
  }

  private chooseHops(object: ModelObject): void {
    const { gateways } = this.options;
    object.ecmp = gateways.length > 1 && this.random.chance(0.25);
    object.hops = object.ecmp ? [...gateways].sort() : [this.random.pick(gateways)];
  }

  private pickDestinations(serial: number): string[] {
    const base = `34.${serial % 256}.${Math.floor(serial / 256) % 256}`;
    const count = this.random.int(1, this.options.maxDestinations ?? 3);
    const picked = new Set<string>();
    if (this.random.chance(0.2)) picked.add(`${base}.0/24`);
    while (picked.size < count) picked.add(`${base}.${this.random.int(1, 254)}`);
    for (const destination of picked) this.everDesired.add(normalize(destination));
    return [...picked];
  }

  /** Sends a request as admin, retrying transport errors, 5xx and 429 until the deadline. */
  private async request(method: string, path: string, body: unknown, accept: number[]): Promise<Answer> {
    const deadline = Date.now() + (this.options.requestDeadlineMs ?? 120_000);
    let last = '';
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) this.counts.retriedRequests++;
      try {
        const response = await this.cluster.controlPlane.request(method, path, body);
        if (accept.includes(response.status)) return { status: response.status, body: response.body };
        last = `${response.status} ${response.text.slice(0, 300)}`;
        if (response.status < 500 && response.status !== 429)
          throw new RequestRefused(`${method} ${path} answered ${last}`);
      } catch (error) {
        if (error instanceof RequestRefused) throw error;
        last = (error as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`${method} ${path} kept failing until the deadline: ${last}`);
      await sleep(250);
    }
  }
}

class RequestRefused extends Error {}

/** An object's routes as `dst via gw[,gw]` lines (the fixture's describeRoute format). */
function routeLines(object: ModelObject): string[] {
  const via = [...object.hops].sort().join(',');
  return object.destinations.map((destination) => `${normalize(destination)} via ${via}`);
}

/** `a.b.c.d` -> `a.b.c.d/32`, as the kernel reports host routes. */
function normalize(destination: string): string {
  return destination.includes('/') ? destination : `${destination}/32`;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item) => b.includes(item));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
