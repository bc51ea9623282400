// `stats`, `pause`, `resume`: a running pod's cgroups (stage1/contract/cgroups.ts)
// read and frozen from the host. rkt had neither; podman's `stats`, `pause` and
// `unpause` are the model.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TspodError, ErrorCode } from '../native/errors.js';
import { appStats, frozenState, setFrozen, type AppCgroupStats } from '../stage1/contract/cgroups.js';
import { POD_FILES, type RuntimeConfig } from '../stage1/contract/pod.js';
import { hostCgroups, readManifest, readPid } from './inspect.js';
import { PodsDir, type Pod } from './pods.js';

export interface InterfaceStats {
  name: string;
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
}

export interface PodStats {
  uuid: string;
  apps: Array<{ name: string } & AppCgroupStats>;
  /** The pod's network namespace (`host`: these are the host's own counters). */
  network: string;
  interfaces: InterfaceStats[];
}

interface RunningPod {
  uuid: string;
  pod: Pod;
  apps: string[];
  pid: number;
}

/** Opens a pod that must be running (and started: its pid file is there). */
function withRunning<T>(podsRoot: string, uuidPrefix: string, what: string, f: (p: RunningPod) => T): T {
  const pods = new PodsDir(podsRoot);
  const uuid = pods.resolve(uuidPrefix);
  const pod = pods.open(uuid);
  if (!pod) throw new TspodError(ErrorCode.NotFound, `no matches found for ${JSON.stringify(uuidPrefix)}`);
  try {
    const state = pod.state();
    if (state !== 'running') throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is ${state}: only a running pod can be ${what}`);
    const pid = readPid(pod.dir);
    if (!pid) throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is starting: try again in a moment`);
    if (hostCgroups().version === 0) throw new TspodError(ErrorCode.Unsupported, `this host has no cgroup file system: pods cannot be ${what}`);
    const apps = (readManifest(pod)?.apps ?? []).map((a) => a.name);
    return f({ uuid, pod, apps, pid });
  } finally {
    pod.close();
  }
}

/** /proc/<pid>/net/dev: the byte and packet counters of the interfaces of pid's network namespace. */
export function netDev(pid: number): InterfaceStats[] {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  } catch {
    return [];
  }
  const out: InterfaceStats[] = [];
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    out.push({ name: m[1], rxBytes: f[0], rxPackets: f[1], txBytes: f[8], txPackets: f[9] });
  }
  return out;
}

function runtimeNet(pod: Pod): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(pod.dir, POD_FILES.runtimeConfig), 'utf8')) as RuntimeConfig).net;
  } catch {
    return 'unknown';
  }
}

export function podStats(podsRoot: string, uuidPrefix: string): PodStats {
  return withRunning(podsRoot, uuidPrefix, 'read', (p) => {
    const l = hostCgroups();
    const apps = p.apps.map((name) => ({ name, ...(appStats(l, p.uuid, name) ?? {}) }));
    return { uuid: p.uuid, apps, network: runtimeNet(p.pod), interfaces: netDev(p.pid) };
  });
}

/**
 * Freezes (or thaws) every app of a running pod and waits until the kernel
 * says each is frozen (thawed). The pod's pid 1 and its supervisor stay
 * awake: `stop` still works (and thaws the pod first).
 */
export async function setPodPaused(podsRoot: string, uuidPrefix: string, paused: boolean): Promise<string> {
  const p = withRunning(podsRoot, uuidPrefix, paused ? 'paused' : 'resumed', (x) => x);
  const l = hostCgroups();
  for (const a of p.apps) {
    if (frozenState(l, p.uuid, a) === undefined) continue; // exited already: its cgroup is gone
    try {
      setFrozen(l, p.uuid, a, paused);
    } catch (e) {
      if (frozenState(l, p.uuid, a) === undefined) continue;
      throw new TspodError(ErrorCode.System, `pod "${p.uuid}": app ${a}: ${(e as Error).message}`);
    }
  }
  // v1 goes through FREEZING; v2 reports frozen in cgroup.events once every task is.
  for (let i = 0; i < 100; i++) {
    const states = p.apps.map((a) => frozenState(l, p.uuid, a)).filter((s) => s !== undefined);
    if (states.every((s) => (paused ? s === 'frozen' : s === 'thawed'))) return p.uuid;
    if (paused && i % 10 === 9) for (const a of p.apps) if (frozenState(l, p.uuid, a) === 'freezing') setFrozen(l, p.uuid, a, true);
    await sleep(20);
  }
  throw new TspodError(ErrorCode.System, `pod "${p.uuid}": the kernel did not finish ${paused ? 'freezing' : 'thawing'} its apps`);
}

/** Thaws a pod's apps if they are frozen (before stop: a frozen v1 task acts on no signal). */
export function thawIfPaused(uuid: string, apps: readonly string[]): void {
  const l = hostCgroups();
  if (l.version === 0) return;
  for (const a of apps) {
    const s = frozenState(l, uuid, a);
    if (s === 'frozen' || s === 'freezing') {
      try {
        setFrozen(l, uuid, a, false);
      } catch {
        /* gone meanwhile */
      }
    }
  }
}
