// What a user asked for with `prepare`/`run`: the pod and its apps, before any
// image is looked at. cmd/podargs.ts builds it from rkt's command line.
import { TspodError, ErrorCode } from '../native/errors.js';
import type { PodVolume } from '../stage1/contract/pod.js';
import type { AppcIsolator } from '../stage1/contract/appc.js';
import { parseNet, type NetChoice } from '../stage1/contract/networks.js';
import type { ExposedPort } from '../stage1/contract/ports.js';
import { checkNetworks } from '../stage1/contract/netconf.js';
import type { PodDns } from '../stage1/contract/dns.js';

export interface MountSpec {
  volume: string;
  target: string;
}

export interface AppSpec {
  /** The image argument as typed (name, ID, docker://…, file). */
  image: string;
  name?: string;
  exec?: string;
  /** Arguments after `--` (up to `---`). */
  args: string[];
  user?: string;
  group?: string;
  supplementaryGids?: number[];
  workingDir?: string;
  readonlyRootfs?: boolean;
  mounts: MountSpec[];
  environment: Array<[string, string]>;
  annotations: Array<[string, string]>;
  /** From --caps-retain, --caps-remove, --oom-score-adj: replace the image's isolators of the same names. */
  isolators?: AppcIsolator[];
  /** --device: host device nodes bound into this app's /dev. */
  devices?: Array<{ hostPath: string; podPath: string; permissions: string }>;
}

export interface PodSpec {
  apps: AppSpec[];
  volumes: PodVolume[];
  /** `--mount` given before any image: applies to every app. */
  globalMounts: MountSpec[];
  inheritEnv: boolean;
  setEnv: Array<[string, string]>;
  setEnvFiles: string[];
  podManifestFile?: string;
  noOverlay: boolean;
  /** --private-users: a user namespace with a range of host ids of its own (stage0/userns.ts). */
  privateUsers?: boolean;
  pullPolicy: 'new' | 'update' | 'never';
  stage1: { path?: string; name?: string; hash?: string };
  /** Run-time defaults recorded at prepare; run-prepared's own flags win. */
  runtime: RuntimeFlags;
  uuidFileSave?: string;
  quiet: boolean;
  /** --sysctl NAME=VALUE (podman's): the pod's os/unix/sysctl isolator. */
  sysctls: Array<[string, string]>;
  /** --port NAME:[HOSTIP:]HOSTPORT: the pod manifest's ports. */
  ports: ExposedPort[];
  /** run --mds-register: register the pod with the metadata service before it starts. */
  mdsRegister?: boolean;
  /** --dns*, --hosts-entry (checked): the pod's `dns` file; undefined: the defaults. */
  dns?: PodDns;
}

export interface RuntimeFlags {
  /** --net as given (checkNet); absent: default. */
  net?: string;
  hostname?: string;
  interactive?: boolean;
  /** --ipc: auto (the default: private), private, parent (the host's IPC namespace). */
  ipc?: string;
}

/** rkt's --ipc values: auto and private give the pod an IPC namespace of its own, parent keeps the host's. */
export function checkIpc(ipc: string | undefined): void {
  if (ipc === undefined || ipc === 'auto' || ipc === 'private' || ipc === 'parent') return;
  throw new TspodError(ErrorCode.BadInput, `--ipc=${ipc}: want auto, private or parent`);
}

/**
 * rkt's --net values: `default` (the default), `default-restricted`, `host`,
 * `none`, and `NAME[:CNI_ARGS]` of a CNI config in <local-config>/net.d, as a
 * comma list (host and none alone).
 */
export function checkNet(net: string | undefined): NetChoice {
  try {
    return parseNet(net);
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, (e as Error).message, { hint: 'use --net=default, default-restricted, host, none or NAME[:CNI_ARGS], comma-separated' });
  }
}

/**
 * Before a pod starts: every network of a --net list has a config (generated or
 * in <localConfig>/net.d, readable and well-formed) and every plugin of it a
 * binary, so that such mistakes leave no pod behind.
 */
export function checkNetworksExist(net: string | undefined, localConfig: string): void {
  const choice = checkNet(net);
  if (choice.kind !== 'private') return;
  try {
    checkNetworks(localConfig, choice.networks.map((n) => n.name));
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, `--net=${net ?? 'default'}: ${(e as Error).message}`);
  }
}
