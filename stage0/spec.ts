// What a user asked for with `prepare`/`run`: the pod and its apps, before any
// image is looked at. cmd/podargs.ts builds it from rkt's command line.
import { TspodError, ErrorCode } from '../native/errors.js';
import type { PodVolume } from '../stage1/contract/pod.js';
import type { AppcIsolator } from '../stage1/contract/appc.js';

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
}

export interface RuntimeFlags {
  net?: string;
  hostname?: string;
  interactive?: boolean;
  /** --ipc: auto (the default: private), private, parent (the host's IPC namespace). */
  ipc?: string;
}

/** Run-time defaults recorded at prepare (run-prepared's flags override them), in the pod directory. */
export const RUNTIME_DEFAULTS_FILE = 'runtime-defaults.json';

/** rkt's --ipc values: auto and private give the pod an IPC namespace of its own, parent keeps the host's. */
export function checkIpc(ipc: string | undefined): void {
  if (ipc === undefined || ipc === 'auto' || ipc === 'private' || ipc === 'parent') return;
  throw new TspodError(ErrorCode.BadInput, `--ipc=${ipc}: want auto, private or parent`);
}

/** The networks this version knows: `host` (the default; `default` means it too until the private network exists) and `none`. */
export function checkNet(net: string | undefined): void {
  if (net === undefined) return;
  for (const n of net.split(',')) {
    if (n !== 'host' && n !== 'none' && n !== 'default') {
      throw new TspodError(ErrorCode.BadInput, `--net=${net}: unknown network ${JSON.stringify(n)}`, { hint: 'use --net=host or --net=none' });
    }
  }
  if (net.includes(',')) throw new TspodError(ErrorCode.BadInput, `--net=${net}: give one network`, { hint: 'use --net=host or --net=none' });
}
