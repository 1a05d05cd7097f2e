/**
 * Test fixture: a real kube-apiserver + etcd (from @opkit/testbed) with namespace `demo`, the example's RBAC
 * applied, and small typed accessors for ConfigTemplates, ConfigMaps and Events. The operator under test runs with
 * the ServiceAccount of rbac.yaml, so every test also proves that the shipped role is enough.
 */
import { fileURLToPath } from 'node:url';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import type { ConfigMap, ConfigTemplateSpec, ConfigTemplateStatus } from '../src/types.js';

export const NAMESPACE = 'demo';
const CRD_PATH = fileURLToPath(new URL('../crd.yaml', import.meta.url));
const RBAC_PATH = fileURLToPath(new URL('../rbac.yaml', import.meta.url));
const TEMPLATES = `/apis/examples.opkit.dev/v1/namespaces/${NAMESPACE}/configtemplates`;
const CONFIG_MAPS = `/api/v1/namespaces/${NAMESPACE}/configmaps`;

/** A ConfigTemplate as read back from the API. */
export interface ConfigTemplate {
  metadata: {
    name: string;
    uid: string;
    generation: number;
    resourceVersion: string;
    finalizers?: string[];
    deletionTimestamp?: string;
  };
  spec: ConfigTemplateSpec;
  status?: ConfigTemplateStatus & { handlers?: Record<string, HandlerOutcome> };
}

/** What opkit records per handler in `status.handlers`. */
export interface HandlerOutcome {
  outcome: 'success' | 'retrying' | 'failed';
  cause: string;
  retries: number;
  message?: string;
  time: string;
}

/** A core/v1 Event, as far as the tests read it. */
export interface KubeEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count?: number;
  involvedObject: { kind: string; name: string; uid: string };
}

/** The fixture. */
export interface ExampleCluster {
  cp: ControlPlane;
  /** Kubeconfig of the ServiceAccount `demo/configmap-operator` bound by rbac.yaml. */
  operatorKubeconfig: string;
  installCrd(): Promise<void>;
  createTemplate(name: string, spec: ConfigTemplateSpec): Promise<ConfigTemplate>;
  /** Merge-patches a template (`null` removes a key). */
  patchTemplate(name: string, patch: Record<string, unknown>): Promise<ConfigTemplate>;
  deleteTemplate(name: string): Promise<void>;
  /** The template, or undefined once it is gone. */
  template(name: string): Promise<ConfigTemplate | undefined>;
  /** The ConfigMap, or undefined when there is none. */
  configMap(name: string): Promise<ConfigMap | undefined>;
  createConfigMap(name: string, data: Record<string, string>): Promise<ConfigMap>;
  patchConfigMap(name: string, patch: Record<string, unknown>): Promise<ConfigMap>;
  deleteConfigMap(name: string): Promise<void>;
  /** Events about the object with this uid. */
  events(uid: string): Promise<KubeEvent[]>;
  stop(): Promise<void>;
}

/** Starts a control plane, creates namespace `demo` and applies rbac.yaml (the CRD only when asked). */
export async function startExampleCluster(): Promise<ExampleCluster> {
  const cp = await startControlPlane();
  try {
    await call(cp, 'POST', '/api/v1/namespaces', { metadata: { name: NAMESPACE } });
    await cp.kubectl(['apply', '-f', RBAC_PATH]);
    const token = await cp.mintToken(NAMESPACE, 'configmap-operator');
    const operatorKubeconfig = await cp.writeKubeconfig({ token });
    return fixture(cp, operatorKubeconfig);
  } catch (error) {
    await cp.stop();
    throw error;
  }
}

function fixture(cp: ControlPlane, operatorKubeconfig: string): ExampleCluster {
  const readOptional = async <T>(path: string): Promise<T | undefined> => {
    const response = await cp.request<T>('GET', path);
    if (response.status === 404) return undefined;
    return check(response, 'GET', path);
  };
  return {
    cp,
    operatorKubeconfig,
    async installCrd() {
      await cp.kubectl(['apply', '-f', CRD_PATH]);
      await cp.kubectl([
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        'crd/configtemplates.examples.opkit.dev',
      ]);
      // Established can precede serving by a moment.
      for (let attempt = 0; (await cp.request('GET', TEMPLATES)).status !== 200; attempt++) {
        if (attempt > 100) throw new Error('ConfigTemplates are not served');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    createTemplate: (name, spec) =>
      call(cp, 'POST', TEMPLATES, {
        apiVersion: 'examples.opkit.dev/v1',
        kind: 'ConfigTemplate',
        metadata: { name, namespace: NAMESPACE },
        spec,
      }),
    patchTemplate: (name, patch) => call(cp, 'PATCH', `${TEMPLATES}/${name}`, patch),
    async deleteTemplate(name) {
      await call(cp, 'DELETE', `${TEMPLATES}/${name}`);
    },
    template: (name) => readOptional<ConfigTemplate>(`${TEMPLATES}/${name}`),
    configMap: (name) => readOptional<ConfigMap>(`${CONFIG_MAPS}/${name}`),
    createConfigMap: (name, data) =>
      call(cp, 'POST', CONFIG_MAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data }),
    patchConfigMap: (name, patch) => call(cp, 'PATCH', `${CONFIG_MAPS}/${name}`, patch),
    async deleteConfigMap(name) {
      await call(cp, 'DELETE', `${CONFIG_MAPS}/${name}`);
    },
    async events(uid) {
      const selector = encodeURIComponent(`involvedObject.uid=${uid}`);
      const list = await call<{ items: KubeEvent[] }>(
        cp,
        'GET',
        `/api/v1/namespaces/${NAMESPACE}/events?fieldSelector=${selector}`,
      );
      return list.items;
    },
    stop: () => cp.stop(),
  };
}

async function call<T>(cp: ControlPlane, method: string, path: string, body?: unknown): Promise<T> {
  return check(await cp.request<T>(method, path, body), method, path);
}

function check<T>(response: { status: number; body: T; text: string }, method: string, path: string): T {
  if (response.status < 200 || response.status >= 300) {
    throw new Error(`${method} ${path} answered ${response.status}: ${response.text.slice(0, 300)}`);
  }
  return response.body;
}

/** The `Ready` condition of a template, if any. */
export function ready(template: ConfigTemplate | undefined) {
  return template?.status?.conditions?.find((condition) => condition.type === 'Ready');
}
