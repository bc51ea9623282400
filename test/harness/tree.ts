// Comparable listings of directory trees, and their differences in words.
// The differential tests compare tspod's rendered rootfs with `umoci unpack`'s.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import assert from 'node:assert/strict';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';

export interface TreeEntry {
  /** '/' for the root, else '/a/b' relative to the root. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files only. */
  size?: number;
  /** Regular files only, unless `contents: false`. */
  sha256?: string;
  /** Symlinks only. */
  target?: string;
  /** Character and block devices only: [major, minor]. */
  rdev?: [number, number];
  /** Whole seconds; only with `mtime: true` (never for the root). */
  mtime?: number;
  /** Regular files with more than one link inside the tree: every path of that inode, sorted. */
  links?: string[];
}

export type Tree = Map<string, TreeEntry>;

export interface ListOptions {
  /** Hash regular files' contents (default true). */
  contents?: boolean;
  /** Record mtimes in whole seconds (default false). Directory mtimes included only with 'all'. */
  mtime?: boolean | 'all';
  /** Record hardlink groups (default true). */
  hardlinks?: boolean;
  /** Include the root directory's own mode and owner (default true; its mtime never). */
  root?: boolean;
  /** Leave out these paths (and what is below them): exact '/a/b' strings or a predicate. */
  ignore?: readonly string[] | ((p: string) => boolean);
}

function typeOf(st: fs.Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char';
  return 'block';
}

function major(dev: number): number {
  return ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
}

function minor(dev: number): number {
  return (dev & 0xff) | ((dev >> 12) & 0xfff00);
}

function sha256File(p: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
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

function ignorer(ignore: ListOptions['ignore']): (p: string) => boolean {
  if (!ignore) return () => false;
  if (typeof ignore === 'function') return ignore;
  const set = ignore.map((s) => s.replace(/\/+$/, ''));
  return (p) => set.some((s) => p === s || p.startsWith(s + '/'));
}

/** Walks `root` (never following symlinks) and lists every entry. */
export function listTree(root: string, opts: ListOptions = {}): Tree {
  const contents = opts.contents ?? true;
  const hardlinks = opts.hardlinks ?? true;
  const skip = ignorer(opts.ignore);
  const tree: Tree = new Map();
  const inodes = new Map<string, string[]>();

  const visit = (abs: string, rel: string): void => {
    const st = fs.lstatSync(abs);
    const type = typeOf(st);
    const e: TreeEntry = { path: rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    if (type === 'file') {
      e.size = st.size;
      if (contents) e.sha256 = sha256File(abs);
      if (hardlinks && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const group = inodes.get(key) ?? [];
        group.push(rel);
        inodes.set(key, group);
      }
    } else if (type === 'symlink') {
      e.target = fs.readlinkSync(abs);
    } else if (type === 'char' || type === 'block') {
      e.rdev = [major(st.rdev), minor(st.rdev)];
    }
    if (opts.mtime && rel !== '/' && (type !== 'dir' || opts.mtime === 'all')) e.mtime = Math.floor(st.mtimeMs / 1000);
    if (rel !== '/' || opts.root !== false) tree.set(rel, e);
    if (type === 'dir') {
      const names = fs.readdirSync(abs).sort();
      for (const name of names) {
        const childRel = rel === '/' ? `/${name}` : `${rel}/${name}`;
        if (skip(childRel)) continue;
        visit(path.join(abs, name), childRel);
      }
    }
  };

  const st = fs.lstatSync(root);
  if (!st.isDirectory()) throw new Error(`listTree: ${root} is not a directory`);
  visit(root, '/');
  for (const group of inodes.values()) {
    if (group.length < 2) continue;
    const sorted = [...group].sort();
    for (const p of group) tree.get(p)!.links = sorted;
  }
  return tree;
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/** One line describing an entry, like `ls -l` would. */
export function formatEntry(e: TreeEntry): string {
  let s = `${e.type} ${octal(e.mode)} ${e.uid}:${e.gid} ${e.path}`;
  if (e.type === 'file') s += ` size=${e.size}${e.sha256 ? ` sha256=${e.sha256.slice(0, 12)}` : ''}`;
  if (e.target !== undefined) s += ` -> ${e.target}`;
  if (e.rdev) s += ` rdev=${e.rdev[0]},${e.rdev[1]}`;
  if (e.links) s += ` links=[${e.links.join(' ')}]`;
  return s;
}

/** Every entry of a tree, one line each, sorted by path. */
export function formatTree(tree: Tree): string {
  return [...tree.values()].map(formatEntry).join('\n');
}

export interface DiffOptions {
  /** Names for the two sides in messages (default 'expected', 'actual'). */
  labels?: [string, string];
}

/** Human-readable differences between two listings; empty when they are equal. */
export function diffTrees(expected: Tree, actual: Tree, opts: DiffOptions = {}): string[] {
  const [le, la] = opts.labels ?? ['expected', 'actual'];
  const out: string[] = [];
  const paths = new Set([...expected.keys(), ...actual.keys()]);
  for (const p of [...paths].sort()) {
    const e = expected.get(p);
    const a = actual.get(p);
    if (!a) {
      out.push(`${p}: missing from ${la} (${le} has ${formatEntry(e!)})`);
      continue;
    }
    if (!e) {
      out.push(`${p}: not in ${le} (${la} has ${formatEntry(a)})`);
      continue;
    }
    if (e.type !== a.type) {
      out.push(`${p}: type ${e.type} in ${le}, ${a.type} in ${la}`);
      continue;
    }
    const diffs: string[] = [];
    if (e.mode !== a.mode) diffs.push(`mode ${octal(e.mode)} != ${octal(a.mode)}`);
    if (e.uid !== a.uid || e.gid !== a.gid) diffs.push(`owner ${e.uid}:${e.gid} != ${a.uid}:${a.gid}`);
    if (e.size !== a.size) diffs.push(`size ${e.size} != ${a.size}`);
    else if (e.sha256 && a.sha256 && e.sha256 !== a.sha256) diffs.push(`content differs (sha256 ${e.sha256.slice(0, 12)} != ${a.sha256.slice(0, 12)})`);
    if (e.target !== a.target) diffs.push(`symlink target ${JSON.stringify(e.target)} != ${JSON.stringify(a.target)}`);
    if (String(e.rdev) !== String(a.rdev)) diffs.push(`rdev ${String(e.rdev)} != ${String(a.rdev)}`);
    if (e.mtime !== undefined && a.mtime !== undefined && e.mtime !== a.mtime) {
      diffs.push(`mtime ${new Date(e.mtime * 1000).toISOString()} != ${new Date(a.mtime * 1000).toISOString()}`);
    }
    if (String(e.links ?? '') !== String(a.links ?? '')) {
      diffs.push(`hardlinks [${(e.links ?? []).join(' ')}] != [${(a.links ?? []).join(' ')}]`);
    }
    if (diffs.length) out.push(`${p}: ${diffs.join('; ')} (${le} != ${la})`);
  }
  return out;
}

/** Lists both directories with the same options and returns their differences. */
export function compareDirs(expectedDir: string, actualDir: string, opts: ListOptions & DiffOptions = {}): string[] {
  return diffTrees(listTree(expectedDir, opts), listTree(actualDir, opts), opts);
}

/** Fails (an AssertionError listing at most `max` differences) unless the two directories are equal. */
export function assertSameTree(expectedDir: string, actualDir: string, opts: ListOptions & DiffOptions & { max?: number } = {}): void {
  const diffs = compareDirs(expectedDir, actualDir, opts);
  if (diffs.length === 0) return;
  const max = opts.max ?? 40;
  const shown = diffs.slice(0, max);
  if (diffs.length > max) shown.push(`… and ${diffs.length - max} more`);
  assert.fail(`${diffs.length} difference(s) between ${expectedDir} and ${actualDir}:\n  ${shown.join('\n  ')}`);
}
