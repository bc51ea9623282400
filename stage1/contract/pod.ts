// The stage0 ↔ stage1 contract: what stage0 writes into a pod directory, what
// stage1 writes back, and the flags stage1 accepts. stage0 and stage1 share only
// this directory (docs/architecture.md, "The stage0 ↔ stage1 ↔ helper contract");
// it imports nothing from either.
import fs from 'node:fs';
import path from 'node:path';
import type { AppcImageManifest, NameValue, AppcApp, AppcPort } from './appc.js';
import type { SeccompFilter } from './seccomp.js';

/**
 * The interface version of this contract: the one the default stage1 declares
 * (annotation tspod/stage1/interface-version) and the only one stage0 speaks;
 * stage0 refuses a stage1 that declares another or none.
 */
export const STAGE1_INTERFACE_VERSION = 1;

/** The stage1 manifest's annotations: one per entrypoint (its path in the stage1 rootfs), and the interface version. */
export const STAGE1_ANNOTATIONS = {
  init: 'tspod/stage1/init',
  enter: 'tspod/stage1/enter',
  gc: 'tspod/stage1/gc',
  interfaceVersion: 'tspod/stage1/interface-version',
} as const;

/**
 * The entrypoints of interface version 1, each at /<name> in the stage1 rootfs
 * (`stop` is not one: stage0 signals the pod's pid 1 itself).
 */
export const STAGE1_ENTRYPOINTS = ['init', 'enter', 'gc'] as const;
export type Stage1Entrypoint = (typeof STAGE1_ENTRYPOINTS)[number];

/** Where named networks' CNI configs live (<dir>/net.d), unless --local-config says otherwise. */
export const DEFAULT_LOCAL_CONFIG = '/etc/tspod';

/** appc's default PATH for apps (and for stage1 when the caller has none). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Files in a pod directory. */
export const POD_FILES = {
  /** appc PodManifest (JSON), written at prepare. */
  manifest: 'pod',
  /** Empty; its mtime is the pod's creation time. */
  created: 'pod-created',
  /** stage1's image manifest. */
  stage1Manifest: 'stage1/manifest',
  /** JSON array: the stage1 image's layer rootfs directories, lowest first. */
  stage1Layers: 'stage1/layers',
  /** Per app: the image manifest, and its layer rootfs directories (JSON, lowest first). */
  appManifest: (app: string) => `appsinfo/${app}/manifest`,
  appLayers: (app: string) => `appsinfo/${app}/layers`,
  /** JSON {images, layers}: the store images and layers the pod uses, written and read by stage0 (image gc's roots, stage0/image-gc.ts). */
  storeRefs: 'store-refs.json',
  /** JSON: the run-time flags given to prepare (stage0's RuntimeFlags; run-prepared's flags override them), written and read by stage0. */
  runtimeDefaults: 'runtime-defaults.json',
  /** JSON RuntimeConfig: the run-time flags, written by stage1 /init. */
  runtimeConfig: 'runtime-config',
  /** Decimal host pid of the pod's pid 1 (whose namespaces enter joins). Written by stage1. */
  pid: 'pid',
  /** Per app: decimal host pid of the app's main process (its mount namespace); the helper writes it. */
  appsPidDir: 'apps-pid',
  appPid: (app: string) => `apps-pid/${app}`,
  /** Per app: exit code in decimal, then a line `oom-killed` when the OOM killer struck in its cgroup; the outer helper writes it. */
  statusDir: 'status',
  appStatus: (app: string) => `status/${app}`,
  /** Per app: the final environment, one NAME=VALUE per line (enter reuses it). */
  envDir: 'env',
  appEnv: (app: string) => `env/${app}`,
  /** Per app: the credentials and restrictions enter must apply (JSON AppSecurity). */
  securityDir: 'security',
  appSecurity: (app: string) => `security/${app}`,
  /** Per app: its overlay's upper and work directories (absent with --no-overlay). */
  overlayUpper: (app: string) => `overlay/${app}/upper`,
  overlayWork: (app: string) => `overlay/${app}/work`,
  /** Per app, --no-overlay (or no overlay support) only: the copy of its image, made at prepare. */
  appCopiedRootfs: (app: string) => `apps/${app}/rootfs`,
  /** Backing directories of empty volumes. */
  sharedVolume: (name: string) => `sharedVolumes/${name}`,
  /** The pod root (stage1 rootfs) mount point; apps live under it at POD_ROOT_PATHS.appRoot. */
  stage1Rootfs: 'stage1/rootfs',
  /** The helper's plan (native/helper/PLAN.md). */
  plan: 'stage1/plan',
  /** --dns*, --hosts-entry: the pod's DNS settings (JSON PodDns, contract/dns.ts), written at prepare; absent: the defaults. */
  dns: 'dns',
  /** The resolv.conf and hosts stage1 generated (from the flags or a network's DNS), bound read-only over each app's. */
  resolvConf: 'stage1/resolv.conf',
  hosts: 'stage1/hosts',
  /** --private-users: the pod's id maps (JSON UserNamespace), written at prepare; absent otherwise. */
  userns: 'userns',
  /** JSON PodNetwork[] (contract/networks.ts): the pod's networks once CNI set them up; absent with --net=host|none. */
  networks: 'networks',
  /** The pod's network namespace: an nsfs bind mount (a private network), removed when the pod exits. */
  netns: 'netns',
  /** JSON: the CNI configurations stage1 added (or began to add), for the DEL at exit or gc. */
  netConfigs: 'stage1/net-configs',
  /** A bash script: the CNI DELs of the pod's networks, run by the helper (exit-exec) when the apps have ended. */
  netRelease: 'stage1/net-release',
  /** --mds-register: JSON MdsRegistration (contract/mds.ts), mode 0600, written by stage0 before stage1 runs. */
  mds: 'mds',
} as const;

/** Paths inside the pod root (POD_FILES.stage1Rootfs, a tmpfs the helper mounts), relative to it. */
export const POD_ROOT_PATHS = {
  /** Where the apps' roots are (an empty directory in the stage1 image too). */
  stage2: 'opt/stage2',
  /** An app's root: its overlay (or its copied rootfs bound there). */
  appRoot: (app: string) => `opt/stage2/${app}/rootfs`,
  /** --private-users with overlay: the app's image layer `i`, idmapped, as an overlay lower. */
  appLayer: (app: string, i: number) => `opt/stage2/${app}/layers/${i}`,
} as const;

/**
 * The id maps of a pod's user namespace, as /proc/PID/uid_map lines: [inside,
 * host, count]. One range each: 0..65535 inside = base..base+65535 on the host.
 */
export interface UserNamespace {
  uidMap: Array<[number, number, number]>;
  gidMap: Array<[number, number, number]>;
}

export interface PodVolume {
  name: string;
  kind: 'host' | 'empty';
  source?: string;
  readOnly?: boolean;
  recursive?: boolean;
  mode?: string;
  uid?: number;
  gid?: number;
}

export interface PodMount {
  volume: string;
  path: string;
}

export interface PodApp {
  name: string;
  image: { id: string; name?: string; labels?: NameValue[] };
  app?: AppcApp;
  readOnlyRootFS?: boolean;
  mounts?: PodMount[];
  annotations?: NameValue[];
}

export interface PodManifest {
  acKind: 'PodManifest';
  acVersion: string;
  apps: PodApp[];
  volumes?: PodVolume[];
  isolators?: Array<{ name: string; value: unknown }>;
  annotations?: NameValue[];
  /** Port forwards (appc ExposedPort; contract/ports.ts): from --port or the pod manifest given. */
  ports?: Array<{ name: string; hostPort: number; hostIP?: string; podPort?: AppcPort }>;
  userAnnotations?: Record<string, string>;
  userLabels?: Record<string, string>;
}

/** Run-time flags stage1 received (saved as runtime-config for enter/gc). */
export interface RuntimeConfig {
  uuid: string;
  net: string;
  hostname: string;
  interactive: boolean;
  debug: boolean;
  /** --ipc: private (auto) or parent (the host's IPC namespace); absent in older pods: private. */
  ipc?: 'private' | 'parent';
  /** --insecure-options=capabilities: apps keep the helper's full capability set. */
  disableCapabilities?: boolean;
  /** --insecure-options=paths: no masked or read-only kernel paths in the apps. */
  disablePaths?: boolean;
  /** --insecure-options=seccomp: no seccomp filter in the apps. */
  disableSeccomp?: boolean;
}

/** What enter applies so that it never grants more than the app has. */
export interface AppSecurity {
  user: string;
  group: string;
  supplementaryGids: number[];
  /** Hex mask of the bounding set; undefined: every capability (--insecure-options=capabilities). */
  capabilities?: string;
  noNewPrivileges: boolean;
  /** os/linux/oom-score-adj (or --oom-score-adj): written before the credentials are dropped. */
  oomScoreAdj?: number;
  /** The seccomp filter (contract/seccomp.ts); undefined: none (--insecure-options=seccomp, or a retain-set of @appc.io/all). */
  seccomp?: SeccompFilter;
  /** The app's device cgroup allow list (`c 1:3 rwm`, contract/devices.ts); undefined: the host has no device cgroup. */
  devices?: string[];
  cwd: string;
}

export type { AppcImageManifest };

/**
 * Writes a pod file the way the contract asks: to a temp name, then renamed,
 * so a reader never sees it half-written (parent directories made as needed).
 */
export function writePodFileAtomically(file: string, data: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  // A temp file a crash left behind goes first: 'wx' (O_EXCL) then makes a
  // new one with this mode and never writes through a planted symlink.
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
  fs.renameSync(tmp, file);
}

/**
 * Reads the optional JSON pod file `name` of the pod at `podDir`: undefined
 * when it is not there; `check` says whether what it holds is well formed,
 * and a malformed or unparsable file is an error naming it.
 */
export function readOptionalPodJson<T>(podDir: string, name: string, check: (value: T) => boolean): T | undefined {
  const file = path.join(podDir, name);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let value: T;
  try {
    value = JSON.parse(text) as T;
  } catch {
    throw new Error(`${file}: malformed`);
  }
  if (!check(value)) throw new Error(`${file}: malformed`);
  return value;
}
