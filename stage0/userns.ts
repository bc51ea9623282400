// --private-users (issue 10 item 6): each such pod runs in a user namespace of its
// own that maps ids 0..65535 inside to a range of 65,536 host ids no other pod of
// this data directory holds. Ranges start at USERNS_BASE (0x10000000, far above
// any /etc/subuid range or account a distribution makes) and are 65,536 ids apart.
// A pod's range is its `userns` file (JSON UserNamespace): written at prepare,
// under an flock of $DIR/userns.lock, by the process that picked the lowest range
// no pod directory (in any state) records; so the range is released when the pod
// directory goes (rm, gc) and the next pod gets it again. Pods of other data
// directories on this host are kept apart through claims in /run/tspod/userns
// (one file per range, naming its pods directory and pod; a claim whose pod no
// longer records that range is free): a host-wide lock, held with ours.
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import { LOCK_EX, sys } from '../native/sys.js';
import { POD_FILES, readOptionalPodJson, type UserNamespace } from '../stage1/contract/pod.js';
import { STATE_DIRS } from './pods.js';

export const USERNS_BASE = 0x10000000;
export const USERNS_SIZE = 65536;
/** Ranges up to 0x10000000 + 16384 * 65536 = 0x50000000. */
export const USERNS_SLOTS = 16384;

const MAX_USER_NAMESPACES = '/proc/sys/user/max_user_namespaces';

/** Refuses --private-users (one line, before any pod exists) where the kernel has no user namespaces. */
export function checkUserNamespaces(): void {
  let max: string;
  try {
    max = fs.readFileSync(MAX_USER_NAMESPACES, 'utf8').trim();
  } catch {
    throw new TspodError(ErrorCode.Unsupported, '--private-users: this kernel has no user namespaces (no /proc/sys/user/max_user_namespaces)');
  }
  if (max === '0') {
    throw new TspodError(ErrorCode.Unsupported, `--private-users: user namespaces are disabled on this host (${MAX_USER_NAMESPACES} is 0)`, {
      hint: 'raise it, or run without --private-users',
    });
  }
}

/** The pod's user namespace (its `userns` file), or undefined without --private-users. */
export function readUserNamespace(podDir: string): UserNamespace | undefined {
  const oneRange = (m: unknown) => Array.isArray(m) && m.length === 1 && (m[0] as number[]).length === 3 && (m[0] as number[]).every((n) => Number.isInteger(n) && n >= 0);
  return readOptionalPodJson<UserNamespace>(podDir, POD_FILES.userns, (u) => oneRange(u.uidMap) && oneRange(u.gidMap));
}

/**
 * Picks the lowest free range and records it in the pod directory `podDir`
 * (which must already be under `podsRoot`), under the allocation lock.
 * `hostClaims`: the host-wide claims directory (another one only in unit tests).
 */
export function allocateUserNamespace(podsRoot: string, podDir: string, hostClaims = HOST_CLAIMS): UserNamespace {
  fs.mkdirSync(hostClaims, { recursive: true, mode: 0o700 });
  const hostLock = fs.openSync(path.join(path.dirname(hostClaims), 'userns.lock'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  const lockFd = fs.openSync(path.join(path.dirname(podsRoot), 'userns.lock'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    sys().flock(hostLock, LOCK_EX);
    sys().flock(lockFd, LOCK_EX);
    const used = new Set<number>(rangesOf(podsRoot).values());
    for (const name of fs.readdirSync(hostClaims)) {
      const base = Number.parseInt(name, 16);
      if (used.has(base)) continue;
      const claim = path.join(hostClaims, name);
      try {
        const [root, uuid] = fs.readFileSync(claim, 'utf8').split('\n');
        if (root !== podsRoot && rangesOf(root, uuid).get(uuid) === base) {
          used.add(base);
          continue;
        }
        fs.rmSync(claim, { force: true }); // its pod is gone (or has another range): free
      } catch {
        /* no claim */
      }
    }
    let base = -1;
    for (let i = 0; i < USERNS_SLOTS && base < 0; i++) if (!used.has(USERNS_BASE + i * USERNS_SIZE)) base = USERNS_BASE + i * USERNS_SIZE;
    if (base < 0) throw new TspodError(ErrorCode.Conflict, `--private-users: all ${USERNS_SLOTS} id ranges are taken by pods`, { hint: 'remove exited pods (tspod gc)' });
    const ns: UserNamespace = { uidMap: [[0, base, USERNS_SIZE]], gidMap: [[0, base, USERNS_SIZE]] };
    const file = path.join(podDir, POD_FILES.userns);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(ns));
    fs.renameSync(`${file}.tmp`, file);
    const claim = path.join(hostClaims, base.toString(16));
    fs.writeFileSync(`${claim}.tmp`, `${podsRoot}\n${path.basename(podDir)}`);
    fs.renameSync(`${claim}.tmp`, claim);
    return ns;
  } finally {
    fs.closeSync(lockFd); // drops the locks
    fs.closeSync(hostLock);
  }
}

/** Host-wide claims of ranges (see the top of this file). */
const HOST_CLAIMS = '/run/tspod/userns';

/** uuid -> range base of the pods under podsRoot that have one (only `only`, if given). */
function rangesOf(podsRoot: string, only?: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const state of STATE_DIRS) {
    let uuids: string[];
    try {
      uuids = only ? [only] : fs.readdirSync(path.join(podsRoot, state));
    } catch {
      continue;
    }
    for (const u of uuids) {
      try {
        const ns = readUserNamespace(path.join(podsRoot, state, u));
        if (ns) out.set(u, ns.uidMap[0][1]);
      } catch {
        /* not there, being deleted, or damaged */
      }
    }
  }
  return out;
}

/**
 * rkt's way for --no-overlay: the copied rootfs is shifted into the range, every
 * id N becoming base+N (an id past the range becomes the pod's nobody, 65534).
 * chown clears setuid/setgid bits: they are put back.
 */
export function shiftTree(dir: string, ns: UserNamespace): void {
  const [, ubase, size] = ns.uidMap[0];
  const gbase = ns.gidMap[0][1];
  const shift = (id: number, base: number) => base + (id < size ? id : 65534);
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    fs.lchownSync(p, shift(st.uid, ubase), shift(st.gid, gbase));
    if (!st.isSymbolicLink() && st.mode & 0o6000) fs.chmodSync(p, st.mode & 0o7777);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
}

/**
 * The reverse, for `export` of a pod's rootfs: ids of the pod's range become the
 * pod's own again (base+N is N); others are left as they are.
 */
export function unshiftTree(dir: string, ns: UserNamespace): void {
  const [, ubase, size] = ns.uidMap[0];
  const gbase = ns.gidMap[0][1];
  const back = (id: number, base: number) => (id >= base && id < base + size ? id - base : id);
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    const uid = back(st.uid, ubase);
    const gid = back(st.gid, gbase);
    if (uid !== st.uid || gid !== st.gid) {
      fs.lchownSync(p, uid, gid);
      if (!st.isSymbolicLink() && st.mode & 0o6000) fs.chmodSync(p, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
}
