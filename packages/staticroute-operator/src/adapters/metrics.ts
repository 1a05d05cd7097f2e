/**
 * Metrics a node operator alerts on, about this node's routes and its netlink sockets: routes installed, refused and
 * failed, kernel operations, netlink errors, socket reopens and health, dump retries, the monitor's re-reads, and
 * when the last full pass succeeded (a pass that stops succeeding is the first sign of a stuck node).
 *
 * They are registered on the registry given (the runtime's, served on `/metrics`), once per registry: an agent that
 * restarts within the process (a retried startup) gets the same series back. Every series carries the node's name,
 * so that dashboards need not join on the pod.
 *
 * Gateway health (ECMP): `staticroute_gateway_up{gateway}` (1 Reachable, 0 Unreachable, absent while Unknown or not
 * probed), `staticroute_gateway_transitions_total{gateway,state}`, and the prober's rounds and failed rounds.
 *
 * Suggested alerts: `staticroute_netlink_up == 0` for 5 minutes (cannot program routes or see drift);
 * `time() - staticroute_last_full_pass_timestamp_seconds > 3 * reconcile interval`;
 * `staticroute_routes{state="failed"} > 0` for 15 minutes; `rate(staticroute_netlink_reopens_total[15m]) > 0`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DesiredState } from '../logic/desired.js';
import type { GatewayState } from '../logic/gateway-health.js';
import type { AdapterEvent, ObservableAdapter } from './health.js';

/** Which adapter a series is about. */
export type NetlinkComponent = 'channel' | 'monitor';

/** How many routes of this node are in each state after a full pass. */
export interface RouteCounts {
  /** Desired routes the kernel holds as desired. */
  installed: number;
  /** Destinations the safety rules refuse. */
  refused: number;
  /** Desired routes the kernel refused or a foreign route blocks, and unwanted routes that could not be removed. */
  failed: number;
}

/** What the agent calls. */
export interface NodeRouteMetrics {
  /**
   * Counts what an adapter reports (errors, reopens, dump retries, operations, re-reads) and mirrors its health in
   * `staticroute_netlink_up`. Returns the unsubscribe function (call it when the adapter is closed).
   */
  watch(component: NetlinkComponent, adapter: ObservableAdapter): () => void;
  /** A full pass succeeded: the route counts and its time (defaults to now). */
  fullPassSucceeded(counts: RouteCounts, at?: Date): void;
  /** A probed gateway's state: `transition` counts it as a change (not for the state found when probing begins). */
  gatewayState(gateway: string, state: GatewayState, transition: boolean): void;
  /** A gateway no longer probed: its `staticroute_gateway_up` series goes. */
  gatewayForgotten(gateway: string): void;
  /** Where the probe round counters come from (read at each scrape); undefined stops reading. */
  probeStats(source: (() => ProbeStats) | undefined): void;
}

/** The prober's cumulative counts. */
export interface ProbeStats {
  rounds: number;
  failedRounds: number;
}

interface Series {
  routes: Gauge<'node' | 'state'>;
  operations: Counter<'node' | 'op' | 'result'>;
  errors: Counter<'node' | 'component' | 'kind'>;
  reopens: Counter<'node' | 'component'>;
  up: Gauge<'node' | 'component'>;
  dumpRetries: Counter<'node' | 'component'>;
  resyncs: Counter<'node' | 'reason'>;
  lastFullPass: Gauge<'node'>;
  gatewayUp: Gauge<'node' | 'gateway'>;
  gatewayTransitions: Counter<'node' | 'gateway' | 'state'>;
  /** Per node: the prober's counts and what the counters showed of them at the last scrape. */
  probeSources: Map<string, { read: () => ProbeStats; seen: ProbeStats }>;
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Gauge<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new Gauge({ name, help, labelNames, registers: [registry] });
}

/** A counter that follows one of the prober's cumulative counts at each scrape. */
function probeCounter(
  registry: Registry,
  name: string,
  help: string,
  sources: Series['probeSources'],
  field: keyof ProbeStats,
): Counter<'node'> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<'node'>;
  return new Counter({
    name,
    help,
    labelNames: ['node'],
    registers: [registry],
    collect() {
      for (const [node, source] of sources) {
        const now = source.read()[field];
        // A new prober (an agent restarted within the process) starts from 0: count from there.
        const delta = now >= source.seen[field] ? now - source.seen[field] : now;
        source.seen[field] = now;
        this.inc({ node }, delta);
      }
    },
  });
}

function series(registry: Registry): Series {
  const probeSources: Series['probeSources'] = new Map();
  probeCounter(
    registry,
    'staticroute_gateway_probe_rounds_total',
    'Rounds of gateway probes (ARP/NDP neighbour resolution of every probed gateway).',
    probeSources,
    'rounds',
  );
  probeCounter(
    registry,
    'staticroute_gateway_probe_failures_total',
    'Probe rounds in which at least one gateway did not answer.',
    probeSources,
    'failedRounds',
  );
  return {
    probeSources,
    gatewayUp: gauge(
      registry,
      'staticroute_gateway_up',
      '1 while a probed gateway is Reachable from this node, 0 while Unreachable; absent while Unknown.',
      ['node', 'gateway'],
    ),
    gatewayTransitions: counter(
      registry,
      'staticroute_gateway_transitions_total',
      'Changes of a probed gateway to a state (Reachable, Unreachable).',
      ['node', 'gateway', 'state'],
    ),
    routes: gauge(
      registry,
      'staticroute_routes',
      'Routes of this node by state after the last full pass: installed, refused (by the safety rules), failed.',
      ['node', 'state'],
    ),
    operations: counter(
      registry,
      'staticroute_route_operations_total',
      'Kernel route operations by operation (add, replace, delete) and result (ok, already-absent or the errno).',
      ['node', 'op', 'result'],
    ),
    errors: counter(
      registry,
      'staticroute_netlink_errors_total',
      'Netlink errors by socket (channel, monitor) and kind (overflow, socket, reopen, timeout, send, dump, ' +
        'dump-interrupted).',
      ['node', 'component', 'kind'],
    ),
    reopens: counter(
      registry,
      'staticroute_netlink_reopens_total',
      'Netlink sockets reopened after a failure, by socket (channel, monitor).',
      ['node', 'component'],
    ),
    up: gauge(
      registry,
      'staticroute_netlink_up',
      '1 while the netlink socket is open (channel: routes can be programmed; monitor: drift is seen), else 0.',
      ['node', 'component'],
    ),
    dumpRetries: counter(
      registry,
      'staticroute_netlink_dump_retries_total',
      'Dumps run again because the kernel reported them interrupted by a concurrent change (NLM_F_DUMP_INTR).',
      ['node', 'component'],
    ),
    resyncs: counter(
      registry,
      'staticroute_monitor_resyncs_total',
      'Full re-reads of addresses and table the route monitor asked for, by reason (link, address, overflow).',
      ['node', 'reason'],
    ),
    lastFullPass: gauge(
      registry,
      'staticroute_last_full_pass_timestamp_seconds',
      'Unix time of the last full pass (addresses and table read, every route planned and applied) that succeeded.',
      ['node'],
    ),
  };
}

const byRegistry = new WeakMap<Registry, Series>();

/** The metrics of node `node`, registered on `registry` on first use. */
export function nodeRouteMetrics(registry: Registry, node: string): NodeRouteMetrics {
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    metrics = series(registry);
    byRegistry.set(registry, metrics);
  }
  const m = metrics;
  return {
    watch(component, adapter) {
      m.up.set({ node, component }, adapter.health.healthy ? 1 : 0);
      // Present from the start: an alert on increase() needs the zero.
      m.reopens.inc({ node, component }, 0);
      m.dumpRetries.inc({ node, component }, 0);
      return adapter.subscribe((event: AdapterEvent) => {
        switch (event.type) {
          case 'health':
            m.up.set({ node, component }, event.health.healthy ? 1 : 0);
            break;
          case 'error':
            m.errors.inc({ node, component, kind: event.kind });
            break;
          case 'reopened':
            m.reopens.inc({ node, component });
            break;
          case 'dump-retried':
            m.dumpRetries.inc({ node, component });
            break;
          case 'operations':
            for (const [op, results] of Object.entries(event.counts)) {
              for (const [result, count] of Object.entries(results)) m.operations.inc({ node, op, result }, count);
            }
            break;
          case 'resync':
            m.resyncs.inc({ node, reason: event.reason });
            break;
        }
      });
    },
    fullPassSucceeded(counts, at = new Date()) {
      for (const state of ['installed', 'refused', 'failed'] as const) m.routes.set({ node, state }, counts[state]);
      m.lastFullPass.set({ node }, at.getTime() / 1000);
    },
    gatewayState(gateway, state, transition) {
      if (state === 'Unknown') m.gatewayUp.remove({ node, gateway });
      else m.gatewayUp.set({ node, gateway }, state === 'Reachable' ? 1 : 0);
      if (transition && state !== 'Unknown') m.gatewayTransitions.inc({ node, gateway, state });
    },
    gatewayForgotten(gateway) {
      m.gatewayUp.remove({ node, gateway });
    },
    probeStats(source) {
      if (!source) m.probeSources.delete(node);
      else m.probeSources.set(node, { read: source, seen: { rounds: 0, failedRounds: 0 } });
    },
  };
}

/**
 * Counts a full pass's routes: its desired state, the destinations whose operation failed or is blocked (`failures`)
 * and the unwanted routes that could not be removed (`undeleted`), as the agent's pass has them.
 */
export function countRoutes(
  state: Pick<DesiredState, 'routes' | 'assessments'>,
  failures: ReadonlyMap<string, string>,
  undeleted: ReadonlyMap<string, string>,
): RouteCounts {
  let failed = 0;
  for (const key of state.routes.keys()) if (failures.has(key)) failed++;
  const refused = new Set<string>();
  for (const assessment of state.assessments.values()) {
    for (const item of assessment.refused) refused.add(item.destination);
  }
  return { installed: state.routes.size - failed, refused: refused.size, failed: failed + undeleted.size };
}
