// Pod garbage collection (rkt's mark and sweep; docs/architecture.md, "The pod state machine") and rm.
//   mark:  run/U unlocked (exited) → exited-garbage/U; prepare/U unlocked (aborted)
//          → garbage/U; prepared/U older than --expire-prepared → garbage/U
//   sweep: exited-garbage/U whose mark is older than the grace period, and every
//          garbage/U: lock, stage1 gc (exited pods only), unmount, delete.
// The grace period counts from the mark rename (the directory's ctime).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { TspodError, ErrorCode } from '../native/errors.js';
import { log } from '../native/log.js';
import { MNT_DETACH, sys } from '../native/sys.js';
import { detectCgroups, removePodCgroups } from '../stage1/contract/cgroups.js';
import { DEFAULT_MASQUERADE, releaseUnusedMasquerade } from '../stage1/contract/masquerade.js';
import { formatDuration } from './duration.js';
import { PodsDir, type Pod } from './pods.js';
import { stage1Entrypoint, stage1Environment } from './run.js';
import { registerPod, unregisterIfRegistered } from './mds/client.js';

export interface GcOptions {
  gracePeriodMs: number;
  expirePreparedMs: number;
  markOnly: boolean;
  debug: boolean;
  now?: number;
}

export interface GcOutput {
  /** stdout lines (`Garbage collecting pod "U"`). */
  out(line: string): void;
  /** stderr lines. */
  err(line: string): void;
}

export function gcPods(podsRoot: string, opts: GcOptions, io: GcOutput): void {
  const pods = new PodsDir(podsRoot);
  pods.ensureLayout();
  mark(pods, 'run', 'exited-garbage', io);
  mark(pods, 'prepare', 'garbage', io);
  if (opts.markOnly) return;
  const now = opts.now ?? Date.now();
  for (const uuid of pods.inState('prepared')) {
    const created = changeTime(pods.podDir('prepared', uuid));
    if (created !== undefined && (opts.expirePreparedMs === 0 || now - created > opts.expirePreparedMs)) {
      const pod = pods.open(uuid);
      if (!pod) continue;
      try {
        if (pod.tryLock()) {
          io.err(`moving expired prepared pod "${uuid}" to garbage`);
          pod.moveTo('garbage');
          pod.unlock();
        }
      } catch {
        /* someone else moved it */
      } finally {
        pod.close();
      }
    }
  }
  for (const uuid of pods.inState('exited-garbage')) {
    const marked = changeTime(pods.podDir('exited-garbage', uuid));
    // A zero grace period sweeps at once: the mark's ctime can be a hair ahead of Date.now().
    if (marked !== undefined && opts.gracePeriodMs > 0 && now - marked < opts.gracePeriodMs) {
      io.err(`pod "${uuid}" not removed: still within grace period (${formatDuration(opts.gracePeriodMs)})`);
      continue;
    }
    sweep(pods, uuid, 'exited-garbage', opts, io);
  }
  for (const uuid of pods.inState('garbage')) sweep(pods, uuid, 'garbage', opts, io);
}

/**
 * What gc cleans on the host beyond one data directory: the default network's
 * host-wide masquerade, once no pod (of any data directory) has an address in
 * it. Kept out of gcPods so that gcPods touches only its pods directory.
 */
export function gcHostNetworks(io: GcOutput): void {
  for (const p of releaseUnusedMasquerade(DEFAULT_MASQUERADE)) io.err(p);
}

/** Moves unlocked pods from `from` to `to` (exited → exited-garbage, aborted prepare → garbage). */
function mark(pods: PodsDir, from: 'run' | 'prepare', to: 'exited-garbage' | 'garbage', io: GcOutput): void {
  for (const uuid of pods.inState(from)) {
    const pod = pods.open(uuid);
    if (!pod) continue;
    try {
      if (pod.where !== from || !pod.tryLock()) continue;
      io.err(`moving pod "${uuid}" to garbage`);
      pod.moveTo(to);
      touchCtime(pod.dir);
      pod.unlock();
    } catch (e) {
      if (!(e instanceof TspodError && e.code === ErrorCode.Conflict)) throw e;
    } finally {
      pod.close();
    }
  }
}

function sweep(pods: PodsDir, uuid: string, where: 'exited-garbage' | 'garbage', opts: GcOptions, io: GcOutput): void {
  const pod = pods.open(uuid);
  if (!pod) return;
  try {
    if (pod.where !== where || !pod.tryLock()) return;
    io.out(`Garbage collecting pod "${uuid}"`);
    deletePod(pods, pod, where === 'exited-garbage', opts.debug, io);
  } finally {
    pod.close();
  }
}

/**
 * Deletes a locked pod: unregister it from the metadata service (errors
 * ignored, as rkt), stage1 gc (for pods that ran), unmount anything still
 * mounted below it, remove the directory and the UUID marker.
 */
export function deletePod(pods: PodsDir, pod: Pod, ran: boolean, debug: boolean, io: GcOutput): void {
  unregisterIfRegistered(pod.dir, pod.uuid);
  if (ran && !runStage1Gc(pod, debug, io)) removeCgroupsAnyway(pod, io);
  unmountBelow(pod.dir);
  fs.rmSync(pod.dir, { recursive: true, force: true });
  pods.dropMarker(pod.uuid);
}

/**
 * run --mds-register: registers the pod that run just prepared (still locked in
 * pods/prepare). If the service refuses it or went away since the check, the
 * pod is deleted at once and the error thrown: no pod is left behind.
 */
export function registerOrDelete(pod: Pod, debug: boolean, io: GcOutput): void {
  try {
    registerPod(pod);
  } catch (e) {
    pod.moveTo('garbage');
    deletePod(pod.pods, pod, false, debug, io);
    throw e;
  }
}

/** Runs the pod's stage1 /gc; false if it could not run or failed. */
function runStage1Gc(pod: Pod, debug: boolean, io: GcOutput): boolean {
  let entry: string;
  try {
    entry = stage1Entrypoint(pod.dir, 'gc');
  } catch (e) {
    io.err(`pod "${pod.uuid}": skipping stage1 gc: ${e instanceof TspodError ? e.message : String(e)}`);
    return false;
  }
  const args = [...(debug ? ['--debug'] : []), pod.uuid];
  const r = spawnSync(entry, args, { cwd: pod.dir, env: stage1Environment({}), stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) io.err(`pod "${pod.uuid}": stage1 gc exited with ${r.status ?? r.signal}`);
  return r.status === 0;
}

/**
 * When the pod's stage1 /gc could not clean up, its cgroups (stage1/contract/
 * cgroups.ts: tspod/<uuid> in the host's layout and in the hybrid layout's
 * cgroup2) are removed here, so that a pod never leaves them behind.
 */
function removeCgroupsAnyway(pod: Pod, io: GcOutput): void {
  const layouts = [detectCgroups(), detectCgroups('/sys/fs/cgroup/unified')];
  for (const left of layouts.flatMap((l) => removePodCgroups(l, pod.uuid))) io.err(`pod "${pod.uuid}": cgroup not removed: ${left}`);
}

/** Unmounts (lazily, deepest first) every mount point at or below dir in this mount namespace. */
export function unmountBelow(dir: string): void {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    return;
  }
  const targets = sys()
    .mountInfo()
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((t): t is string => !!t)
    .map((t) => t.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((t) => t === real || t.startsWith(`${real}/`))
    .sort((a, b) => b.length - a.length);
  for (const t of targets) {
    try {
      sys().umount2(t, MNT_DETACH);
    } catch (e) {
      log().warn(`cannot unmount ${t}: ${(e as Error).message}`);
    }
  }
}

/** `rm`: immediately mark and delete pods in any state but running, preparing, deleting. */
export function removePod(podsRoot: string, uuidPrefix: string, debug: boolean, io: GcOutput): void {
  const pods = new PodsDir(podsRoot);
  const uuid = pods.resolve(uuidPrefix);
  const pod = pods.open(uuid);
  if (!pod) throw new TspodError(ErrorCode.NotFound, `no matches found for ${JSON.stringify(uuidPrefix)}`);
  try {
    if (!pod.tryLock()) {
      const state = pod.state();
      throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is ${state}: cannot remove it`, {
        hint: state === 'running' ? 'stop it first (tspod stop)' : undefined,
      });
    }
    const where = pod.where;
    if (where === 'run') pod.moveTo('exited-garbage');
    else if (where === 'prepare' || where === 'prepared') pod.moveTo('garbage');
    deletePod(pods, pod, where === 'run' || where === 'exited-garbage', debug, io);
    io.out(`"${uuid}"`);
  } finally {
    pod.close();
  }
}

function changeTime(dir: string): number | undefined {
  try {
    return fs.statSync(dir).ctimeMs;
  } catch {
    return undefined;
  }
}

/** The rename already set ctime; chmod to the same mode makes sure of it on every filesystem. */
function touchCtime(dir: string): void {
  try {
    const st = fs.statSync(dir);
    fs.chmodSync(dir, st.mode & 0o7777);
  } catch {
    /* gone */
  }
}
