// Image paths in unpacked layers: the one resolver that stage0 (prepare's checks
// and volume pre-fill), stage1 (pod-setup's "does the image have this file") and
// unpack (hardlinks into lower layers) use to look at an image without mounting it.
//
// An image is the stack of its layer directories, merged by overlayfs's rules
// (native/overlay.ts, which render, the whitelist layer and unpack use too).
//
// Resolution walks the merged tree one name at a time. On the host every step
// is an lstat of one name inside a directory that the walk has itself found to
// be a real directory (never a symlink), so no host symlink is ever followed. A
// symlink of the image is followed only when the caller asks for it, and then
// inside the image: an absolute target restarts at the image root, `..` stops at
// the root (openat2's RESOLVE_IN_ROOT semantics), and 40 links make a loop. A
// file that is then read is opened with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) from its layer directory and checked to be the inode the
// walk found.
//
// This module is in native/ because both sides use it (stage1 may import native/
// but not store/); it imports only sys.ts, errors.ts and overlay.ts.
import fs from 'node:fs';
import { TspodError, ErrorCode, errnoCode } from './errors.js';
import { NUMBER_STATS, overlayChild, overlayRoots } from './overlay.js';
import { O_CLOEXEC, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, sys } from './sys.js';

const MAX_SYMLINKS = 40;
/** Files read whole (passwd, group) larger than this are refused rather than loaded. */
const MAX_READ = 64 << 20;

/** What a path of the image resolves to. */
export interface ImageEntry {
  /** The path inside the image after symlinks were followed (`/` for the root). */
  imagePath: string;
  /** The same path relative to a layer directory (`` for the root): no symlink, no `..`. */
  rel: string;
  /** The layer directory (host path) that provides the entry: the topmost one. */
  layer: string;
  /** `layer/rel` on the host; every component of rel was checked to be a real directory. */
  hostPath: string;
  /** lstat of hostPath. */
  stat: fs.Stats;
  /**
   * For a directory: the host directories that merge into it, top first (the
   * first is hostPath). Render these to get the directory as an app sees it.
   * Empty for anything else.
   */
  merged: string[];
}

interface Part {
  layer: string;
  host: string;
  stat: fs.Stats;
}

/** A name of the merged tree: a directory's merge set (top first), or one non-directory. */
interface Node {
  rel: string;
  parts: Part[];
}

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * One image's layers, for any number of lookups. What a lookup finds is cached
 * for the life of the instance: make one per task (a prepare, a plan), not one
 * to keep.
 */
export class ImageFs {
  private readonly root: Node | undefined;
  private readonly cache = new Map<string, Node | null>();

  /** `layersLowestFirst`: the layer directories, lowest first, as image records list them. */
  constructor(layersLowestFirst: readonly string[]) {
    const top = [...layersLowestFirst].reverse();
    const parts = overlayRoots(top, NUMBER_STATS).map((p) => ({ layer: p.host, host: p.host, stat: p.stat }));
    this.root = parts.length ? { rel: '', parts } : undefined;
  }

  /**
   * Resolves `p` (inside the image; relative paths start at its root) by overlay
   * rules. Symlinks on the way are followed inside the image; the last one only
   * with `followFinal` (default true). Undefined if the image has no such entry
   * (missing, whited out, a loop, or a non-directory on the way).
   */
  resolve(p: string, opts: { followFinal?: boolean } = {}): ImageEntry | undefined {
    if (!this.root || p.includes('\0')) return undefined;
    const followFinal = opts.followFinal ?? true;
    const stack: Node[] = [this.root];
    const todo = components(p).reverse();
    let links = 0;
    while (todo.length > 0) {
      const name = todo.pop()!;
      if (name === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const node = this.child(stack[stack.length - 1], name);
      if (!node) return undefined;
      const last = todo.length === 0;
      const top = node.parts[0];
      if (top.stat.isSymbolicLink() && !(last && !followFinal)) {
        if (++links > MAX_SYMLINKS) return undefined;
        const target = fs.readlinkSync(top.host);
        if (target === '') return undefined;
        if (target.startsWith('/')) stack.length = 1;
        todo.push(...components(target).reverse());
        continue;
      }
      if (last) return entryOf(node);
      if (!top.stat.isDirectory()) return undefined;
      stack.push(node);
    }
    return entryOf(stack[stack.length - 1]);
  }

  /**
   * Looks `p` up without following any symlink of the image (no `..` either): the
   * entry, or `through`, the image path of the first symlink on the way, or
   * undefined if the image has no such entry.
   */
  lookupNoFollow(p: string): { entry: ImageEntry; through?: undefined } | { entry?: undefined; through: string } | undefined {
    if (!this.root || p.includes('\0')) return undefined;
    const names = components(p);
    let node = this.root;
    for (let i = 0; i < names.length; i++) {
      if (names[i] === '..') return undefined;
      const child = this.child(node, names[i]);
      if (!child) return undefined;
      if (i === names.length - 1) return { entry: entryOf(child) };
      const top = child.parts[0];
      if (top.stat.isSymbolicLink()) return { through: `/${child.rel}` };
      if (!top.stat.isDirectory()) return undefined;
      node = child;
    }
    return { entry: entryOf(node) };
  }

  /** Finds an executable the way execvp would, with `pathVar` the app's PATH. */
  findExecutable(file: string, pathVar: string): ImageEntry | undefined {
    const candidates = file.includes('/') ? [file.startsWith('/') ? file : `/${file}`] : pathVar.split(':').filter(Boolean).map((d) => `${d}/${file}`);
    for (const c of candidates) {
      const f = this.resolve(c);
      if (f && f.stat.isFile() && f.stat.mode & 0o111) return f;
    }
    return undefined;
  }

  /** Whether the image has an entry at `p` (a dangling or outward symlink counts: it is not followed). */
  has(p: string): boolean {
    return this.resolve(p, { followFinal: false }) !== undefined;
  }

  /** The content of the regular file at `p` (symlinks followed inside the image), or undefined. */
  readFile(p: string): Buffer | undefined {
    const e = this.resolve(p);
    if (!e || !e.stat.isFile()) return undefined;
    if (e.stat.size > MAX_READ) {
      throw new TspodError(ErrorCode.BadFormat, `the image's ${e.imagePath} is too large to read (${e.stat.size} bytes)`);
    }
    const fd = openEntry(e);
    try {
      return fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The merged child `name` of directory node `dir`. */
  private child(dir: Node, name: string): Node | undefined {
    const rel = dir.rel === '' ? name : `${dir.rel}/${name}`;
    const cached = this.cache.get(rel);
    if (cached !== undefined) return cached ?? undefined;
    const found = overlayChild(
      dir.parts.map((p) => p.host),
      name,
      NUMBER_STATS,
    );
    const parts = found === undefined ? [] : found.dirs ?? [found.leaf];
    const node = parts.length > 0 ? { rel, parts: parts.map((p) => ({ layer: dir.parts[p.index].layer, host: p.host, stat: p.stat })) } : undefined;
    this.cache.set(rel, node ?? null);
    return node;
  }
}

function entryOf(node: Node): ImageEntry {
  const top = node.parts[0];
  return {
    imagePath: `/${node.rel}`,
    rel: node.rel,
    layer: top.layer,
    hostPath: top.host,
    stat: top.stat,
    merged: top.stat.isDirectory() ? node.parts.map((p) => p.host) : [],
  };
}

let openat2Missing = false;

/**
 * Opens a regular file that ImageFs found, read-only, from its layer directory
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), and checks it is the inode
 * the walk saw. Without openat2 (a kernel before 5.6, or a seccomp filter) the
 * walk's own checks stand and the file is opened with O_NOFOLLOW. The caller
 * closes the fd.
 */
export function openEntry(e: ImageEntry): number {
  if (!e.stat.isFile()) throw new Error(`openEntry: ${e.imagePath} is not a regular file`);
  const flags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | O_CLOEXEC;
  let fd = -1;
  if (!openat2Missing) {
    const dirfd = fs.openSync(e.layer, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      fd = sys().openat2(dirfd, e.rel, flags, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOSYS' && code !== 'EPERM') {
        throw new TspodError(ErrorCode.System, `cannot open the image's ${e.imagePath}: ${code ?? String(err)}`, { cause: err });
      }
      openat2Missing = true;
    } finally {
      fs.closeSync(dirfd);
    }
  }
  if (fd < 0) fd = fs.openSync(e.hostPath, flags);
  const st = fs.fstatSync(fd);
  if (st.dev !== e.stat.dev || st.ino !== e.stat.ino || !st.isFile()) {
    fs.closeSync(fd);
    throw new TspodError(ErrorCode.System, `the image's ${e.imagePath} changed while it was being read`);
  }
  return fd;
}

/** Resolves `p` in the image made of `layersLowestFirst` (see ImageFs.resolve). */
export function resolveInImage(layersLowestFirst: readonly string[], p: string, followFinal = true): ImageEntry | undefined {
  return new ImageFs(layersLowestFirst).resolve(p, { followFinal });
}

/**
 * Why `p` cannot be a path inside an image (a mount point, a working directory,
 * a mount target), or undefined if it can: it must be absolute and have no `..`
 * component (a path that climbs could only be meant to leave the image).
 */
export function imagePathProblem(p: unknown): string | undefined {
  if (typeof p !== 'string' || p === '') return 'is empty';
  if (p.includes('\0')) return 'contains a NUL character';
  if (!p.startsWith('/')) return 'is not an absolute path';
  if (p.split('/').includes('..')) return 'has a ".." component';
  return undefined;
}
