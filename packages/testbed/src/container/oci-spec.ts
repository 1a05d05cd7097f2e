/**
 * From a Kubernetes pod template to an OCI runtime spec (`config.json`), the way the kubelet and a CRI runtime
 * (containerd) turn a container's settings into one, for the parts the test bed needs: user and group, capabilities,
 * no_new_privs, read-only root, seccomp, emptyDir volumes, the service account token, host network, memory limit.
 *
 * Kept close to containerd 1.6's CRI plugin: bounding = effective = permitted = the capabilities the container asks
 * for (none inheritable, none ambient); `allowPrivilegeEscalation: false` sets no_new_privs; RuntimeDefault is the
 * runtime's default profile for that bounding set; /etc/hosts, /etc/hostname and /etc/resolv.conf are bind mounts,
 * read-only when the root is. Differences, on purpose: emptyDir volumes are tmpfs mounts (the kubelet's are folders
 * on the node's disk unless `medium: Memory`), and there is no writable /dev/shm, /dev/mqueue nor
 * /dev/termination-log, so that nothing outside the pod's volumes is writable.
 */
import { IMAGE, type OciImageConfig } from './image.js';
import type { OciSeccomp } from './seccomp.js';

/** What a container run needs, already resolved from the pod template. */
export interface ContainerRunSpec {
  /** argv: the image's entrypoint and arguments (or the container's command/args). */
  args: string[];
  env: Record<string, string>;
  cwd: string;
  uid: number;
  gid: number;
  /** Capability names with the `CAP_` prefix: bounding, effective and permitted set. */
  capabilities: string[];
  noNewPrivileges: boolean;
  readonlyRootfs: boolean;
  /** Seccomp filter; undefined = unconfined. */
  seccomp: OciSeccomp | undefined;
  /** Writable tmpfs mounts (the pod's emptyDir volumes). */
  tmpfs: { destination: string; sizeBytes: number | undefined }[];
  /** Bind mounts from the host (token, hosts files). */
  binds: { source: string; destination: string; readonly: boolean }[];
  /**
   * Network namespace: `host` shares the runtime's (hostNetwork on a real node), `{ path }` joins one (hostNetwork
   * on a simulated node), `private` gets a new one.
   */
  network: 'host' | 'private' | { path: string };
  hostname: string;
  memoryLimitBytes: number | undefined;
}

/** The parts of a Kubernetes container this translation reads. */
export interface KubeContainer {
  name: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext?: KubeSecurityContext & {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    privileged?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  resources?: { limits?: { memory?: string } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

interface KubeSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  seccompProfile?: { type: string };
}

/** The parts of a pod spec this translation reads. */
export interface KubePodSpec {
  hostNetwork?: boolean;
  automountServiceAccountToken?: boolean;
  securityContext?: KubeSecurityContext;
  containers: KubeContainer[];
  volumes?: { name: string; emptyDir?: { sizeLimit?: string; medium?: string } }[];
}

/** Node-side facts the kubelet would supply. */
export interface PodRuntimeContext {
  nodeName: string;
  namespace: string;
  podName: string;
  /** Network namespace of the node (hostNetwork); undefined = the runtime's own. */
  nodeNetworkNamespacePath: string | undefined;
  /** Host folder with `token`, `ca.crt` and `namespace`, mounted at the service account path. */
  serviceAccountDir: string;
  /** In-cluster address of the API server (`KUBERNETES_SERVICE_HOST` / `_PORT`). */
  apiHost: string;
  apiPort: number;
  /** Host files for /etc/hosts, /etc/hostname and /etc/resolv.conf. */
  etcFiles: { hosts: string; hostname: string; resolvConf: string };
  /** The RuntimeDefault seccomp profile for a bounding set. */
  runtimeDefaultSeccomp(bounding: string[]): OciSeccomp;
}

export const SERVICE_ACCOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

/** containerd's capabilities for a container that drops none. */
const RUNTIME_DEFAULT_CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
];

const quantityUnits: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
};

/** Bytes of a Kubernetes quantity such as `16Mi` or `256M`. */
export function parseQuantity(quantity: string): number {
  const match = /^(\d+)([kMG]i?|Ki)?$/.exec(quantity);
  const unit = quantityUnits[match?.[2] ?? ''];
  if (!match || unit === undefined) throw new Error(`unsupported quantity ${quantity}`);
  return Number(match[1]) * unit;
}

function capabilitySet(container: KubeContainer): string[] {
  const caps = container.securityContext?.capabilities;
  const drop = (caps?.drop ?? []).map((cap) => cap.toUpperCase());
  let set = drop.includes('ALL') ? [] : RUNTIME_DEFAULT_CAPABILITIES.filter((cap) => !drop.includes(cap));
  set = [...new Set([...set, ...(caps?.add ?? []).map((cap) => cap.toUpperCase())])];
  return set.map((cap) => `CAP_${cap}`);
}

function fieldValue(fieldPath: string, context: PodRuntimeContext): string {
  switch (fieldPath) {
    case 'spec.nodeName':
      return context.nodeName;
    case 'metadata.namespace':
      return context.namespace;
    case 'metadata.name':
      return context.podName;
    default:
      throw new Error(`fieldRef ${fieldPath} is not supported by the test bed`);
  }
}

/**
 * The run of the pod's container `containerName` from `image`, as the kubelet and containerd would set it up on the
 * node described by `context`. Refuses what the test bed cannot reproduce (privileged, Localhost seccomp profiles).
 */
export function containerRunFromPod(
  pod: KubePodSpec,
  containerName: string,
  image: OciImageConfig,
  context: PodRuntimeContext,
): ContainerRunSpec {
  const container = pod.containers.find((entry) => entry.name === containerName);
  if (!container) throw new Error(`the pod has no container ${containerName}`);
  const security = container.securityContext ?? {};
  if (security.privileged) throw new Error('privileged containers are not supported by the test bed');
  const [imageUid, imageGid] = image.User.split(':').map(Number);
  const uid = security.runAsUser ?? pod.securityContext?.runAsUser ?? imageUid ?? 0;
  const gid = security.runAsGroup ?? pod.securityContext?.runAsGroup ?? imageGid ?? 0;
  if ((security.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) && uid === 0) {
    throw new Error('runAsNonRoot is set but the container would run as root');
  }
  const capabilities = capabilitySet(container);
  const seccompType = security.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type ?? 'Unconfined';
  if (seccompType !== 'RuntimeDefault' && seccompType !== 'Unconfined') {
    throw new Error(`seccomp profile type ${seccompType} is not supported by the test bed`);
  }
  const env: Record<string, string> = {};
  for (const entry of image.Env) {
    const equals = entry.indexOf('=');
    env[entry.slice(0, equals)] = entry.slice(equals + 1);
  }
  env.HOSTNAME = context.nodeName;
  Object.assign(env, {
    KUBERNETES_SERVICE_HOST: context.apiHost,
    KUBERNETES_SERVICE_PORT: String(context.apiPort),
    KUBERNETES_SERVICE_PORT_HTTPS: String(context.apiPort),
    KUBERNETES_PORT: `tcp://${context.apiHost}:${context.apiPort}`,
  });
  for (const variable of container.env ?? []) {
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    env[variable.name] = fieldPath ? fieldValue(fieldPath, context) : (variable.value ?? '');
  }
  const volumes = new Map((pod.volumes ?? []).map((volume) => [volume.name, volume]));
  const tmpfs = (container.volumeMounts ?? []).map((mount) => {
    const volume = volumes.get(mount.name);
    if (!volume?.emptyDir) throw new Error(`volume ${mount.name}: only emptyDir volumes are supported`);
    const size = volume.emptyDir.sizeLimit;
    return { destination: mount.mountPath, sizeBytes: size ? parseQuantity(size) : undefined };
  });
  const readonly = security.readOnlyRootFilesystem === true;
  const binds = [
    { source: context.etcFiles.hosts, destination: '/etc/hosts', readonly },
    { source: context.etcFiles.hostname, destination: '/etc/hostname', readonly },
    { source: context.etcFiles.resolvConf, destination: '/etc/resolv.conf', readonly },
  ];
  if (pod.automountServiceAccountToken !== false) {
    binds.push({ source: context.serviceAccountDir, destination: SERVICE_ACCOUNT_PATH, readonly: true });
  }
  const memory = container.resources?.limits?.memory;
  return {
    args: [...(container.command ?? image.Entrypoint), ...(container.args ?? (container.command ? [] : image.Cmd))],
    env,
    cwd: container.workingDir ?? image.WorkingDir ?? '/',
    uid,
    gid,
    capabilities,
    noNewPrivileges: security.allowPrivilegeEscalation === false,
    readonlyRootfs: readonly,
    seccomp: seccompType === 'RuntimeDefault' ? context.runtimeDefaultSeccomp(capabilities) : undefined,
    tmpfs,
    binds,
    network: !pod.hostNetwork
      ? 'private'
      : context.nodeNetworkNamespacePath
        ? { path: context.nodeNetworkNamespacePath }
        : 'host',
    hostname: pod.hostNetwork ? context.nodeName : context.podName,
    memoryLimitBytes: memory ? parseQuantity(memory) : undefined,
  };
}

/** containerd's masked and read-only paths. */
const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The OCI process section of a run (also the base of `exec` processes). */
export function ociProcess(run: ContainerRunSpec, args = run.args): Record<string, unknown> {
  return {
    terminal: false,
    user: { uid: run.uid, gid: run.gid, additionalGids: [run.gid] },
    args,
    env: Object.entries(run.env).map(([name, value]) => `${name}=${value}`),
    cwd: run.cwd,
    capabilities: {
      bounding: run.capabilities,
      effective: run.capabilities,
      permitted: run.capabilities,
      inheritable: [],
      ambient: [],
    },
    noNewPrivileges: run.noNewPrivileges,
  };
}

/** The OCI runtime spec (`config.json`) of a run whose root file system is `rootfsPath`. */
export function ociRuntimeSpec(
  run: ContainerRunSpec,
  rootfsPath: string,
  cgroupsPath?: string,
): Record<string, unknown> {
  const namespaces: { type: string; path?: string }[] = [
    { type: 'pid' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
  ];
  if (run.network === 'private') namespaces.push({ type: 'network' });
  else if (run.network !== 'host') namespaces.push({ type: 'network', path: run.network.path });
  return {
    ociVersion: '1.0.2',
    process: ociProcess(run),
    root: { path: rootfsPath, readonly: run.readonlyRootfs },
    hostname: run.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      ...run.tmpfs.map((mount) => ({
        destination: mount.destination,
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'mode=1777', ...(mount.sizeBytes ? [`size=${mount.sizeBytes}`] : [])],
      })),
      ...run.binds.map((bind) => ({
        destination: bind.destination,
        type: 'bind',
        source: bind.source,
        options: ['rbind', 'rprivate', bind.readonly ? 'ro' : 'rw'],
      })),
    ],
    linux: {
      namespaces,
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      ...(run.seccomp ? { seccomp: run.seccomp } : {}),
      ...(cgroupsPath ? { cgroupsPath } : {}),
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        ...(run.memoryLimitBytes ? { memory: { limit: run.memoryLimitBytes } } : {}),
      },
    },
  };
}

/** The run the image itself describes (what `docker run` of it does), with the DaemonSet's hardening. */
export function defaultImageRun(image: OciImageConfig): Pick<ContainerRunSpec, 'args' | 'env' | 'cwd' | 'uid' | 'gid'> {
  const [uid, gid] = image.User.split(':').map(Number);
  return {
    args: [...image.Entrypoint, ...image.Cmd],
    env: Object.fromEntries(
      image.Env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
    ),
    cwd: image.WorkingDir,
    uid: uid ?? IMAGE.uid,
    gid: gid ?? IMAGE.gid,
  };
}
