// Port forwards of a pod (appc pod manifest `ports`, from --port): what the CNI
// portmap plugin gets as runtimeConfig.portMappings for one network. Owned by
// the ports work (issue 8 item 2); stage1's network code calls only this.
import type { AppcApp } from './appc.js';
import type { PodManifest } from './pod.js';

/** CNI's portMappings capability entry. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIP?: string;
}

/**
 * The network stage1 asks about: its name, whether it masquerades, its index in
 * the pod's list and that whole list (the forwards go through the first network
 * with ipMasq, else the last: rkt's rule).
 */
export interface PortNetwork {
  name: string;
  ipMasq: boolean;
  index: number;
  all: ReadonlyArray<{ name: string; ipMasq: boolean }>;
}

/**
 * The port mappings for `network` ([] for now: --port is not supported yet).
 * `apps`: each app's name and its effective appc app (the pod manifest's, else its image's).
 */
export function portMappingsFor(_manifest: PodManifest, _apps: ReadonlyArray<{ name: string; app?: AppcApp }>, _network: PortNetwork): PortMapping[] {
  return [];
}
