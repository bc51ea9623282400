// Reading a pod's state for status, list and the commands that act on pods.
import fs from 'node:fs';
import path from 'node:path';
import { POD_FILES, type AppSecurity, type PodManifest, type RuntimeConfig, type UserNamespace } from '../stage1/contract/pod.js';
import { detectCgroups, frozenState, type CgroupLayout } from '../stage1/contract/cgroups.js';
import { DEFAULT_PIDS_LIMIT, limitsFromIsolators, type Limits } from '../stage1/contract/resources.js';
import { mtime, type Pod, type PodState } from './pods.js';
import { readUserNamespace } from './userns.js';
import { readPodNetworks, type PodNetwork } from '../stage1/contract/networks.js';
import { readPodDns, type PodDns } from '../stage1/contract/dns.js';

export interface AppStatus {
  name: string;
  imageName?: string;
  imageId: string;
  /** Present once the app has exited. */
  exitCode?: number;
  /** The OOM killer killed in the app's cgroup (its main process, or a child of it). */
  oomKilled?: boolean;
  /** Its cgroup limits (from its isolators; the default pids limit filled in). */
  limits?: Limits;
  startedAt?: number;
  finishedAt?: number;
  /** What stage1 applied (written when the pod started): credentials, capabilities, seccomp filter. */
  security?: AppSecurity;
}

export interface PodStatus {
  uuid: string;
  state: PodState;
  createdAt?: number;
  startedAt?: number;
  pid?: number;
  exited: boolean;
  /** Running, with every app's cgroup frozen by `tspod pause`. */
  paused?: boolean;
  apps: AppStatus[];
  manifest?: PodManifest;
  /** The pod's networks (stage1's `networks` file); [] for host, none, or before it started. */
  networks: PodNetwork[];
  /** --private-users: the pod's id maps. */
  userNamespace?: UserNamespace;
  /** Once started: whether the pod had an IPC namespace of its own (--ipc). */
  ipc?: 'private' | 'parent';
  /** --dns*, --hosts-entry as stored at prepare (the defaults when none was given). */
  dns?: PodDns;
  /** Once started: where the apps' /etc/resolv.conf came from (flags, host, network; image: the image's own). */
  resolvConfFrom?: 'flags' | 'host' | 'network' | 'image';
}

export function readManifest(pod: Pod): PodManifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(pod.dir, POD_FILES.manifest), 'utf8')) as PodManifest;
  } catch {
    return undefined;
  }
}

export function readPid(dir: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(path.join(dir, POD_FILES.pid), 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The app's status file: its exit code, then `oom-killed` on a line of its own when so. */
function readExitCode(dir: string, app: string): { code?: number; oomKilled?: boolean } {
  try {
    const lines = fs.readFileSync(path.join(dir, POD_FILES.appStatus(app)), 'utf8').split('\n');
    const n = Number(lines[0].trim());
    return Number.isInteger(n) ? { code: n, oomKilled: lines.slice(1).some((l) => l.trim() === 'oom-killed') || undefined } : {};
  } catch {
    return {};
  }
}

function appLimits(isolators: Parameters<typeof limitsFromIsolators>[0]): Limits | undefined {
  try {
    const l = limitsFromIsolators(isolators);
    return { ...l, pids: l.pids ?? DEFAULT_PIDS_LIMIT };
  } catch {
    return undefined; // (refused at prepare)
  }
}

let layout: CgroupLayout | undefined;
/** The host's cgroup layout, found once per command. */
export function hostCgroups(): CgroupLayout {
  layout ??= detectCgroups();
  return layout;
}

/** Whether every app of a running pod has its cgroup frozen. */
export function podPaused(uuid: string, apps: readonly string[]): boolean {
  const l = hostCgroups();
  if (l.version === 0 || !apps.length) return false;
  return apps.every((a) => frozenState(l, uuid, a) === 'frozen');
}

export function podStatus(pod: Pod): PodStatus {
  const state = pod.state();
  const dir = pod.dir;
  const manifest = readManifest(pod);
  const exited = state === 'exited' || state === 'exited garbage' || state === 'exited deleting';
  const running = state === 'running';
  const podStarted = running || exited ? mtime(path.join(dir, POD_FILES.pid)) : undefined;
  const apps: AppStatus[] = (manifest?.apps ?? []).map((a) => {
    const finishedAt = mtime(path.join(dir, POD_FILES.appStatus(a.name)));
    // The helper publishes the apps' pids (and then the pod's) once every app is
    // up: an app that exited before has no pid file, and it started no later than
    // it finished.
    let startedAt = mtime(path.join(dir, POD_FILES.appPid(a.name))) ?? podStarted;
    if (startedAt !== undefined && finishedAt !== undefined) startedAt = Math.min(startedAt, finishedAt);
    const exit = running ? {} : readExitCode(dir, a.name);
    return {
      name: a.name,
      imageName: a.image.name ? `${a.image.name}${versionOf(a.image.labels)}` : undefined,
      imageId: a.image.id,
      exitCode: exit.code,
      oomKilled: exit.oomKilled,
      limits: appLimits(a.app?.isolators),
      startedAt,
      finishedAt,
      security: running || exited ? readSecurity(dir, a.name) : undefined,
    };
  });
  return {
    uuid: pod.uuid,
    state,
    createdAt: pod.createdAt(),
    startedAt: podStarted,
    pid: running || exited ? readPid(dir) : undefined,
    exited,
    paused: running ? podPaused(pod.uuid, apps.map((a) => a.name)) : undefined,
    apps,
    manifest,
    networks: running || exited ? readPodNetworks(dir) : [],
    userNamespace: readUserns(dir),
    ipc: running || exited ? readIpc(dir) : undefined,
    ...dnsStatus(dir, running || exited),
  };
}

function dnsStatus(dir: string, started: boolean): Pick<PodStatus, 'dns' | 'resolvConfFrom'> {
  let dns: PodDns;
  try {
    dns = readPodDns(dir);
  } catch {
    return {};
  }
  if (!started) return { dns };
  const generated = fs.existsSync(path.join(dir, POD_FILES.resolvConf));
  const from = dns.resolv === 'host' ? 'host' : dns.resolv === 'flags' ? 'flags' : generated && dns.resolv === 'default' ? 'network' : 'image';
  return { dns, resolvConfFrom: from };
}

function readIpc(dir: string): 'private' | 'parent' | undefined {
  try {
    const rc = JSON.parse(fs.readFileSync(path.join(dir, POD_FILES.runtimeConfig), 'utf8')) as RuntimeConfig;
    return rc.ipc ?? 'private';
  } catch {
    return undefined;
  }
}

function readUserns(dir: string): UserNamespace | undefined {
  try {
    return readUserNamespace(dir);
  } catch {
    return undefined;
  }
}

function readSecurity(dir: string, app: string): AppSecurity | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, POD_FILES.appSecurity(app)), 'utf8')) as AppSecurity;
  } catch {
    return undefined;
  }
}

function versionOf(labels?: Array<{ name: string; value: string }>): string {
  const v = labels?.find((l) => l.name === 'version')?.value;
  return v ? `:${v}` : '';
}
