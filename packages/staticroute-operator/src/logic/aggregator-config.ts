/**
 * Configuration of the aggregator (the Deployment) from environment variables. Pure: takes the environment as a
 * record, never reads `process.env`.
 */
import { DEFAULT_PROBE_PORT } from './config.js';

/** Namespace and name of the Lease the aggregator replicas elect their leader with. */
export const AGGREGATOR_LEASE = { namespace: 'static-routes', name: 'k8s-staticroute-aggregator' };

export interface AggregatorConfig {
  /** This replica's identity in the leader election (the pod name). */
  identity: string | undefined;
  leaseNamespace: string;
  leaseName: string;
  /** Lease duration: how long a standby waits for a leader that stopped renewing. */
  leaseDurationSeconds: number;
  /** An agent whose report is older than this counts as silent. */
  silentAfterMs: number;
  /** How long a deletion waits for silent agents. */
  deletionGraceMs: number;
  /** How long a change waits for the nodes' reports before a partial status is written. */
  settleMs: number;
  probePort: number;
  probeAddress: string;
  logLevel: string;
}

function seconds(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const parsed = Number(value.trim());
  if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
    throw new Error(`${name} must be a number of seconds between ${min} and ${max}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

function wholeSeconds(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  const parsed = seconds(name, value, fallback, min, max);
  if (!Number.isInteger(parsed))
    throw new Error(`${name} must be a whole number of seconds, got ${JSON.stringify(value)}`);
  return parsed;
}

/** Reads the aggregator's configuration; throws with a message naming the variable when one is malformed. */
export function readAggregatorConfig(env: Readonly<Record<string, string | undefined>>): AggregatorConfig {
  return {
    identity: env.POD_NAME?.trim() || undefined,
    leaseNamespace: env.LEASE_NAMESPACE?.trim() || AGGREGATOR_LEASE.namespace,
    leaseName: env.LEASE_NAME?.trim() || AGGREGATOR_LEASE.name,
    // Whole seconds (a Lease field), longer than the 10 s renew deadline with a margin for the standby.
    leaseDurationSeconds: wholeSeconds('LEASE_DURATION_SECONDS', env.LEASE_DURATION_SECONDS, 15, 15, 300),
    silentAfterMs: seconds('SILENT_AGENT_SECONDS', env.SILENT_AGENT_SECONDS, 180, 5, 86_400) * 1000,
    deletionGraceMs: seconds('DELETION_GRACE_SECONDS', env.DELETION_GRACE_SECONDS, 120, 0, 86_400) * 1000,
    settleMs: seconds('STATUS_SETTLE_SECONDS', env.STATUS_SETTLE_SECONDS, 2, 0, 60) * 1000,
    probePort: seconds('PROBE_PORT', env.PROBE_PORT, DEFAULT_PROBE_PORT, 1, 65_535),
    probeAddress: env.PROBE_ADDRESS?.trim() || '0.0.0.0',
    logLevel: env.LOG_LEVEL?.trim() || 'info',
  };
}
