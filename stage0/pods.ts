// Pods on disk and their state machine (rkt's; docs/architecture.md, "The pod
// state machine"):
//
//   embryo/U → prepare/U → prepared/U → run/U → exited-garbage/U → (deleted)
//                  └──────────────────────────────► garbage/U ──► (deleted)
//
// State = directory + lock. Each transition is a rename plus an fsync of the parent
// directory; the lock is an flock on the pod directory's own fd, so it survives
// the rename and the kernel drops it when the holder dies.
//
// UUID lookup never scans every pod: pods/uuids/<first two hex>/<uuid> marks each
// pod, so a prefix lookup reads one small bucket and then stats the state dirs.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { TspodError, ErrorCode, errnoCode } from '../native/errors.js';
import { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, sys } from '../native/sys.js';
import { PRIVATE_DIR_MODE, secureDataDir } from '../store/paths.js';
import { POD_FILES } from '../stage1/contract/pod.js';

export const STATE_DIRS = ['embryo', 'prepare', 'prepared', 'run', 'exited-garbage', 'garbage'] as const;
export type StateDir = (typeof STATE_DIRS)[number];

/** rkt's state names (what `status` prints as state=). */
export type PodState =
  | 'embryo'
  | 'preparing'
  | 'aborted prepare'
  | 'prepared'
  | 'running'
  | 'exited'
  | 'exited garbage'
  | 'exited deleting'
  | 'garbage'
  | 'deleting';

/** Where `uuid`-prefix lookup searches (rkt: not embryo, not garbage). */
const LOOKUP_DIRS: StateDir[] = ['prepare', 'prepared', 'run', 'exited-garbage'];

export class PodsDir {
  /** `root` is $DIR/pods: the data directory is made private first (store/paths.ts). */
  constructor(readonly root: string) {
    secureDataDir(path.dirname(root));
  }

  stateDir(state: StateDir): string {
    return path.join(this.root, state);
  }

  podDir(state: StateDir, uuid: string): string {
    return path.join(this.root, state, uuid);
  }

  private markerFile(uuid: string): string {
    return path.join(this.root, 'uuids', uuid.slice(0, 2), uuid);
  }

  ensureLayout(): void {
    for (const s of STATE_DIRS) fs.mkdirSync(this.stateDir(s), { recursive: true, mode: PRIVATE_DIR_MODE });
    fs.mkdirSync(path.join(this.root, 'uuids'), { recursive: true, mode: PRIVATE_DIR_MODE });
  }

  /** Creates embryo/U, locks it and moves it to prepare/U. */
  create(): Pod {
    this.ensureLayout();
    const uuid = randomUUID();
    const embryo = this.podDir('embryo', uuid);
    fs.mkdirSync(embryo, { mode: PRIVATE_DIR_MODE });
    const fd = openDir(embryo);
    if (!sys().flock(fd, LOCK_EX | LOCK_NB)) throw new TspodError(ErrorCode.Conflict, `cannot lock new pod ${uuid}`);
    fs.mkdirSync(path.dirname(this.markerFile(uuid)), { recursive: true, mode: PRIVATE_DIR_MODE });
    fs.writeFileSync(this.markerFile(uuid), '');
    const pod = new Pod(this, uuid, 'embryo', fd);
    pod.moveTo('prepare');
    return pod;
  }

  /** The state directory a pod is in now, or undefined. */
  findState(uuid: string, dirs: readonly StateDir[] = STATE_DIRS): StateDir | undefined {
    for (const s of dirs) if (fs.existsSync(this.podDir(s, uuid))) return s;
    return undefined;
  }

  /**
   * Resolves a UUID or unique prefix (rkt's rules: lower-cased, searched in
   * prepare, prepared, run and exited-garbage).
   */
  resolve(prefix: string): string {
    const p = prefix.trim().toLowerCase();
    if (!p) throw new TspodError(ErrorCode.BadInput, 'UUID cannot be empty');
    if (!/^[0-9a-f-]+$/.test(p)) throw new TspodError(ErrorCode.BadInput, `no matches found for ${JSON.stringify(prefix)}`, { hint: 'a pod UUID is hex digits and dashes' });
    const candidates = p.length >= 2 ? this.bucket(p.slice(0, 2)) : this.allUuids();
    const matches = candidates.filter((u) => u.startsWith(p) && this.findState(u, LOOKUP_DIRS) !== undefined);
    if (matches.length === 0) throw new TspodError(ErrorCode.NotFound, `no matches found for ${JSON.stringify(prefix)}`, { hint: 'see tspod list' });
    if (matches.length > 1) throw new TspodError(ErrorCode.Ambiguous, `ambiguous uuid, ${matches.length} matches`, { hint: 'give more of the UUID' });
    return matches[0];
  }

  private bucket(two: string): string[] {
    try {
      return fs.readdirSync(path.join(this.root, 'uuids', two));
    } catch {
      return [];
    }
  }

  /** Every pod's UUID (for list and gc; lookups use buckets). */
  allUuids(): string[] {
    const out: string[] = [];
    let buckets: string[];
    try {
      buckets = fs.readdirSync(path.join(this.root, 'uuids'));
    } catch {
      return out;
    }
    for (const b of buckets) out.push(...this.bucket(b));
    return out;
  }

  /** UUIDs in one state directory. */
  inState(state: StateDir): string[] {
    try {
      return fs.readdirSync(this.stateDir(state));
    } catch {
      return [];
    }
  }

  /** Opens a pod without locking it (for status and list). */
  open(uuid: string): Pod | undefined {
    const state = this.findState(uuid);
    if (!state) return undefined;
    let fd: number;
    try {
      fd = openDir(this.podDir(state, uuid));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return this.open(uuid); // moved meanwhile
      throw e;
    }
    // It may have moved between findState and open: the fd still names the pod.
    return new Pod(this, uuid, this.findState(uuid) ?? state, fd);
  }

  dropMarker(uuid: string): void {
    fs.rmSync(this.markerFile(uuid), { force: true });
  }
}

export class Pod {
  constructor(
    readonly pods: PodsDir,
    readonly uuid: string,
    private stateDir: StateDir,
    /** An O_RDONLY|O_DIRECTORY fd of the pod directory: the lock lives on it. */
    readonly fd: number,
  ) {}

  get dir(): string {
    return this.pods.podDir(this.stateDir, this.uuid);
  }

  get where(): StateDir {
    return this.stateDir;
  }

  /** Re-reads which state directory the pod is in (another process may have moved it). */
  refresh(): StateDir | undefined {
    const s = this.pods.findState(this.uuid);
    if (s) this.stateDir = s;
    return s;
  }

  tryLock(exclusive = true): boolean {
    return sys().flock(this.fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
  }

  unlock(): void {
    sys().flock(this.fd, LOCK_UN);
  }

  /** True if some process holds the pod's lock (a conflicting one for a shared probe). */
  isLockedElsewhere(): boolean {
    if (sys().flock(this.fd, LOCK_SH | LOCK_NB)) {
      sys().flock(this.fd, LOCK_UN);
      return false;
    }
    return true;
  }

  /** rkt's state name, from the directory and the lock. */
  state(): PodState {
    const dir = this.refresh() ?? this.stateDir;
    const locked = dir === 'embryo' || dir === 'prepared' ? false : this.isLockedElsewhere();
    switch (dir) {
      case 'embryo':
        return 'embryo';
      case 'prepare':
        return locked ? 'preparing' : 'aborted prepare';
      case 'prepared':
        return 'prepared';
      case 'run':
        return locked ? 'running' : 'exited';
      case 'exited-garbage':
        return locked ? 'exited deleting' : 'exited garbage';
      case 'garbage':
        return locked ? 'deleting' : 'garbage';
    }
  }

  /**
   * Renames the pod into another state directory and syncs both parents. Throws
   * Conflict if another process moved it first (rkt: ENOENT means it lost the race).
   */
  moveTo(to: StateDir): void {
    const from = this.dir;
    const target = this.pods.podDir(to, this.uuid);
    try {
      fs.renameSync(from, target);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new TspodError(ErrorCode.Conflict, `pod "${this.uuid}" was moved by another process`);
      throw e;
    }
    syncDir(path.dirname(target));
    syncDir(path.dirname(from));
    this.stateDir = to;
  }

  /** ms since the epoch of pod-created's mtime. */
  createdAt(): number | undefined {
    return mtime(path.join(this.dir, POD_FILES.created));
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}

function openDir(dir: string): number {
  return fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
}

function syncDir(dir: string): void {
  const fd = openDir(dir);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function mtime(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}
