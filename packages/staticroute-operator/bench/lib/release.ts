/**
 * What the release bundle gives the operator's two roles: the container arguments and environment of the agents'
 * DaemonSet and of the aggregator's Deployment. The benchmarks start their processes with exactly these settings, so
 * that they measure the shipped timings (report heartbeat, settling delay, grace periods), not the e2e fixture's
 * short ones.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_DIR } from './report.js';

export const RELEASE = path.join(REPO_DIR, 'deploy/release/k8s-staticroute-operator-v1.0.0.yaml');
export const AGENT_SERVICE_ACCOUNT = 'k8s-staticroute-operator';
export const AGGREGATOR_SERVICE_ACCOUNT = 'k8s-staticroute-aggregator';
export const NAMESPACE = 'static-routes';

/** One container of the release, as the benchmarks start it. */
export interface ReleaseContainer {
  /** `args` of the container (the aggregator's role argument). */
  args: string[];
  /** Environment variables with a literal value. */
  env: Record<string, string>;
  /** Variables the kubelet fills from the pod (`valueFrom.fieldRef`): name -> field path. */
  fieldRefs: Record<string, string>;
}

interface Workload {
  kind?: string;
  metadata?: { name?: string };
  spec?: {
    template?: {
      spec?: {
        containers?: Array<{
          args?: string[];
          env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }>;
        }>;
      };
    };
  };
}

function container(kind: string, name: string): ReleaseContainer {
  const documents = parseAllDocuments(readFileSync(RELEASE, 'utf8')).map((document) => document.toJSON() as Workload);
  const workload = documents.find((document) => document?.kind === kind && document.metadata?.name === name);
  const spec = workload?.spec?.template?.spec?.containers?.[0];
  if (!spec) throw new Error(`${RELEASE}: no ${kind} ${name} with a container`);
  const env: Record<string, string> = {};
  const fieldRefs: Record<string, string> = {};
  for (const variable of spec.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = String(variable.value);
    else if (variable.valueFrom?.fieldRef?.fieldPath) fieldRefs[variable.name] = variable.valueFrom.fieldRef.fieldPath;
  }
  return { args: spec.args ?? [], env, fieldRefs };
}

/** The agents' DaemonSet container (NODE_NAME comes from `spec.nodeName`). */
export const agentContainer = (): ReleaseContainer => container('DaemonSet', 'k8s-staticroute-operator');

/** The aggregator Deployment's container (`args: [aggregator]`; POD_NAME comes from `metadata.name`). */
export const aggregatorContainer = (): ReleaseContainer => container('Deployment', 'k8s-staticroute-aggregator');
