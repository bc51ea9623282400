// The tree hash of an unpacked layer: one digest over a canonical listing of every
// entry under the layer's rootfs. unpack.ts computes it from what it writes (file
// contents are hashed on their way to disk, never read back); hashTree() walks a
// directory and computes the same digest from disk, which is how `image verify`
// notices a layer that was changed after it was unpacked.
//
// The listing, one line per entry, sorted by path (JS string order):
//   JSON [path, type, mode, uid, gid, size, data, xattrs]
//   path    relative to the rootfs, '/'-separated; the rootfs itself is "."
//   type    d f l c b p s (directory, regular file, symlink, char/block device, fifo, socket)
//   mode    permission bits incl. setuid/setgid/sticky (st_mode & 07777)
//   size    bytes, regular files only (0 otherwise)
//   data    f: sha256 hex of the content; l: the link target; c/b: "major:minor"; else ""
//   xattrs  [[name, base64 value], ...] sorted by name
// Times are not part of it (they carry no meaning for verification), nor is
// hardlink identity (two names of one inode are listed as two equal files), nor
// security.selinux (labels belong to the host's policy, not to the image).
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { sys } from '../../native/sys.js';

export type EntryType = 'd' | 'f' | 'l' | 'c' | 'b' | 'p' | 's';

export interface TreeEntry {
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  data: string;
  xattrs: Array<[string, Buffer]>;
}

const VERSION_LINE = 'tspod-treehash-v1\n';

/** Whether an xattr takes part in the tree hash. */
export function hashedXattr(name: string): boolean {
  return name !== 'security.selinux';
}

function line(e: TreeEntry): string {
  const xattrs = e.xattrs
    .filter(([n]) => hashedXattr(n))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([n, v]) => [n, v.toString('base64')]);
  return JSON.stringify([e.path, e.type, e.mode & 0o7777, e.uid, e.gid, e.type === 'f' ? e.size : 0, e.data, xattrs]);
}

/** The digest (`sha256:<hex>`) over a set of entries, in any order. */
export function treeDigest(entries: TreeEntry[]): string {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const h = createHash('sha256');
  h.update(VERSION_LINE);
  for (const e of sorted) h.update(line(e) + '\n');
  return `sha256:${h.digest('hex')}`;
}

export function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

export function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

export function typeOf(st: fs.Stats | fs.BigIntStats): EntryType {
  if (st.isDirectory()) return 'd';
  if (st.isFile()) return 'f';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return 's';
}

/**
 * Recomputes the tree hash of `rootfs` from disk. The walk and the reads are
 * synchronous (much faster than one promise per call for thousands of small
 * files); the event loop gets a turn every few milliseconds.
 */
export async function hashTree(rootfs: string): Promise<string> {
  const root = path.resolve(rootfs);
  const entries: TreeEntry[] = [];
  const byInode = new Map<string, string>();
  const buf = Buffer.allocUnsafe(1 << 20);
  let lastYield = Date.now();
  // Depth-first walk; nothing is followed (lstat everywhere, files opened O_NOFOLLOW).
  const stack: string[] = ['.'];
  while (stack.length > 0) {
    const rel = stack.pop()!;
    const abs = rel === '.' ? root : `${root}/${rel}`;
    const st = fs.lstatSync(abs, { bigint: true });
    const type = typeOf(st);
    const entry: TreeEntry = {
      path: rel,
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === 'f' ? Number(st.size) : 0,
      data: '',
      xattrs: sys().lxattrs(abs),
    };
    entries.push(entry);
    switch (type) {
      case 'd':
        for (const name of fs.readdirSync(abs)) stack.push(rel === '.' ? name : `${rel}/${name}`);
        break;
      case 'f': {
        const key = `${st.dev}:${st.ino}`;
        let digest = st.nlink > 1n ? byInode.get(key) : undefined;
        if (digest === undefined) {
          digest = hashFile(abs, buf);
          if (st.nlink > 1n) byInode.set(key, digest);
        }
        entry.data = digest;
        break;
      }
      case 'l':
        entry.data = fs.readlinkSync(abs);
        break;
      case 'c':
      case 'b':
        entry.data = `${devMajor(st.rdev)}:${devMinor(st.rdev)}`;
        break;
    }
    if (Date.now() - lastYield > 20) {
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = Date.now();
    }
  }
  return treeDigest(entries);
}

function hashFile(abs: string, buf: Buffer): string {
  const h = createHash('sha256');
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
