/**
 * @opkit/testbed: a real kube-apiserver + etcd on loopback and simulated nodes in network namespaces, for tests of
 * operators that talk to Kubernetes and program the kernel's routing tables.
 */
export { resolveControlPlaneBinaries, type ControlPlaneBinaries } from './control-plane/binaries.js';
export {
  startControlPlane,
  type ControlPlane,
  type KubectlOptions,
  type StartControlPlaneOptions,
} from './control-plane/control-plane.js';
export {
  apiRequest,
  type ApiCredentials,
  type ApiRequestOptions,
  type ApiResponse,
} from './control-plane/api-client.js';
export type { CommandResult } from './exec.js';
export {
  startNetwork,
  type SimGateway,
  type SimNetwork,
  type SimNode,
  type StartNetworkOptions,
} from './network/network.js';
export type { HostExecOptions, HostSpawnOptions, RouteQuery, SimHost } from './network/host.js';
export type { RouteMonitor } from './network/route-monitor.js';
export type { Route, RouteEvent } from './network/routes.js';
export { cleanupLeftovers } from './lifetime/cleanup.js';
export {
  ALLOWED_DESTINATION_RANGES,
  DEFAULT_GATEWAYS,
  HUB_ADDRESS_V4,
  HUB_ADDRESS_V6,
  VPC_SUBNET_V4,
  VPC_SUBNET_V6,
} from './constants.js';
export { buildImage, type BuildImageOptions, type DebianSource, type ImageBundle } from './container/build.js';
export { IMAGE, imageConfig, readPins, type ImagePins, type OciImageConfig } from './container/image.js';
export {
  containerRunFromPod,
  ociRuntimeSpec,
  SERVICE_ACCOUNT_PATH,
  type ContainerRunSpec,
  type KubePodSpec,
  type PodRuntimeContext,
} from './container/oci-spec.js';
export { runContainer, type OciContainer, type RunContainerOptions } from './container/runtime.js';
export { generateSbom, type CycloneDxBom, type SbomComponent } from './container/sbom.js';
export { runtimeDefaultSeccomp, type OciSeccomp } from './container/seccomp.js';
