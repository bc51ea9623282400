// Unpacks one layer tar into its own directory, which becomes one overlayfs lower
// directory. Layers are not stacked here: each goes into an empty directory of its
// own, so lower layers are never written.
//
// Safety. Every write stays inside `rootfs`, whatever the archive says and in
// whatever order. The unpacker keeps a map of every path it has created in this
// layer (with its type) and that map, not the disk, decides what a path means:
//  - entry paths are normalised (`./`, empty and `.` components dropped); an
//    absolute path or any `..` component refuses the whole layer (UnsafeLayer);
//  - a path whose parent components pass through a symlink of this layer refuses
//    the layer; missing parents are created as directories (0755, root:root);
//  - hardlink targets get the same checks (absolute, `..`, through a symlink:
//    refused); a target missing from this layer is looked up in the lower layers
//    (`lowerRootfs`, nearest first, following overlay rules, never a symlink) and
//    copied in as a new file; not found anywhere, the layer is refused as BadFormat;
//  - nothing is ever created through an existing name: the old entry is removed
//    first (a directory with everything under it) and the new one is created with
//    O_CREAT|O_EXCL|O_NOFOLLOW (files), mkdir, symlink, mknod or link, none of
//    which follow a symlink in the final component. Owners and times are set with
//    fchown/futimes or lchown/lutimes; chmod is never applied to a symlink.
//
// Whiteouts. `.wh.<name>` becomes a character device 0:0 named <name>, and
// `.wh..wh..opq` sets trusted.overlay.opaque=y on its directory. A whiteout only
// hides lower layers (image-spec layer.md): if this layer also has <name>, that
// entry stays, and when it is a directory it becomes opaque instead. Other
// `.wh..wh.*` names (AUFS bookkeeping) are skipped with a warning; `.wh.`, `.wh..`
// and `.wh...` refuse the layer. xattrs in overlayfs's namespaces
// (trusted.overlay.*, user.overlay.*) are never taken from a tar.
//
// Tar is read by store/tar/reader.ts (ustar, GNU, PAX with binary xattr values;
// sparse files refused as Unsupported).
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { TspodError, ErrorCode, isTspodError, errnoCode } from '../../native/errors.js';
import { makedev, S_IFCHR, S_IFBLK, S_IFIFO, sys } from '../../native/sys.js';
import type { TarEntry } from '../tar/entry.js';
import { TarParser, readTar, type TarBodySink, type TarEntryHandler } from '../tar/reader.js';
import { treeDigest, typeOf, devMajor, devMinor, type TreeEntry } from './treehash.js';
import { ImageFs, openEntry, type ImageEntry } from '../../native/image-fs.js';
import { isOverlayXattr, OVERLAY_OPAQUE_XATTR } from '../../native/overlay.js';
import { classifyName, AUFS_META_PREFIX, OPAQUE_MARKER } from './whiteout.js';

export interface UnpackResult {
  /** treehash.ts digest over what was written; hashTree(rootfs) gives the same. */
  treeHash: string;
  /** Entries in rootfs, not counting rootfs itself. */
  entries: number;
  /** Bytes of regular-file content (an inode with several names counted once). */
  size: number;
  warnings: string[];
}

/**
 * A hardlink whose target is in neither this layer nor `lowerRootfs` (BadFormat).
 * The importer, which unpacks layers concurrently without lowers, retries such a
 * layer once the layers below it are unpacked.
 */
export class MissingLinkTargetError extends TspodError {
  constructor(message: string) {
    super(ErrorCode.BadFormat, message);
  }
}

export interface UnpackOptions {
  /** Names the input in errors and warnings ("layer sha256:…"). */
  what?: string;
  /** The lower layers' rootfs directories, nearest first (for hardlinks into them). */
  lowerRootfs?: string[];
}

/**
 * Unpacks the (uncompressed) tar stream into `rootfs`, an empty directory. On
 * failure, rootfs holds a partial tree that the caller removes; `tar` is left
 * as it is (not destroyed), so a caller can still drain it through its digest
 * checks. On success `tar` has been read to its end.
 */
export async function unpackLayer(tar: Readable, rootfs: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const what = opts.what ?? 'layer';
  const unpacker = new Unpacker(path.resolve(rootfs), what, (opts.lowerRootfs ?? []).map((p) => path.resolve(p)));
  const parser = new TarParser(unpacker, { what, warn: (msg) => unpacker.warn(msg) });
  try {
    await readTar(tar, parser);
    unpacker.finish();
  } catch (e) {
    unpacker.abort();
    if (isTspodError(e)) throw e;
    const at = parser.current !== undefined ? ` at entry ${q(parser.current)}` : '';
    throw new TspodError(ErrorCode.System, `${what}: unpacking failed${at}: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  return unpacker.result();
}

function q(s: string): string {
  return JSON.stringify(s);
}

// ---------------------------------------------------------------------------
// Writing the tree

interface Node {
  entry: TreeEntry;
  /** Identity of the inode (names made by hardlinks share it); 0 for non-files. */
  ino: number;
  whiteout?: boolean;
  /** Directories: names of the children (keys), to remove a subtree. */
  children?: Set<string>;
  /** Directories: times applied once everything inside is written. */
  mtime?: number;
  atime?: number;
  /** Directories: a default ACL applied at the end (so nothing unpacked inherits it). */
  aclDefault?: Buffer;
}

const ACL_DEFAULT = 'system.posix_acl_default';
const ACL_ACCESS = 'system.posix_acl_access';
const MAX_WARNINGS = 100;
const O_CREATE_NEW = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

type TargetLookup = { kind: 'here'; node: Node } | { kind: 'absent'; lowerVisible: boolean } | { kind: 'deleted' };

class Unpacker implements TarEntryHandler {
  private readonly nodes = new Map<string, Node>();
  private readonly rootNode: Node;
  private readonly warnings: string[] = [];
  private droppedWarnings = 0;
  private nextIno = 1;
  private openFd = -1;
  private aufsWarned = false;
  /** The lower layers as one image, for hardlinks into them (made on first use). */
  private lowerImage?: ImageFs;

  constructor(
    private readonly root: string,
    private readonly what: string,
    private readonly lowers: string[],
  ) {
    const st = fs.lstatSync(root);
    if (!st.isDirectory()) throw new TspodError(ErrorCode.System, `${what}: unpack target ${root} is not a directory`);
    this.rootNode = {
      entry: { path: '.', type: 'd', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, data: '', xattrs: sys().lxattrs(root) },
      ino: 0,
      children: new Set(),
    };
    this.nodes.set('.', this.rootNode);
  }

  warn(msg: string): void {
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(`${this.what}: ${msg}`);
    else this.droppedWarnings++;
  }

  private unsafe(msg: string): TspodError {
    return new TspodError(ErrorCode.UnsafeLayer, `${this.what}: refusing unsafe layer: ${msg}`, {
      hint: 'nothing was written outside the layer directory; the image may be malicious',
    });
  }

  private bad(msg: string): TspodError {
    return new TspodError(ErrorCode.BadFormat, `${this.what}: ${msg}`);
  }

  private abs(key: string): string {
    return key === '.' ? this.root : `${this.root}/${key}`;
  }

  /**
   * Normalised path components; refuses absolute paths and `..`. `label` names
   * the path in the error (built only when there is one).
   */
  private components(raw: string, label: () => string): string[] {
    if (raw.startsWith('/')) throw this.unsafe(`${label()} is an absolute path`);
    const out = raw.split('/');
    let clean = true;
    for (const c of out) {
      if (c === '..') throw this.unsafe(`${label()} has a ".." path component`);
      if (c === '' || c === '.') clean = false;
    }
    return clean ? out : out.filter((c) => c !== '' && c !== '.');
  }

  entry(e: TarEntry): TarBodySink | null {
    const raw = e.path;
    const comps = this.components(raw, () => `entry ${q(raw)}`);
    if (comps.length === 0) {
      if (e.type !== 'dir') throw this.bad(`entry ${q(raw)} would replace the layer's root directory with a ${e.type}`);
      this.updateDir(this.rootNode, e, raw);
      return null;
    }
    for (let i = 0; i < comps.length - 1; i++) {
      if (comps[i].startsWith(AUFS_META_PREFIX) && comps[i] !== OPAQUE_MARKER) return this.skipAufs(raw);
    }
    const cls = classifyName(comps[comps.length - 1]);
    switch (cls.kind) {
      case 'aufs-meta':
        return this.skipAufs(raw);
      case 'invalid':
        throw this.unsafe(`whiteout entry ${q(raw)} would delete its own directory`);
      case 'opaque': {
        const dir = this.markerParent(comps);
        if (dir) this.setOpaque(dir);
        return null;
      }
      case 'whiteout':
        this.whiteout([...comps.slice(0, -1), cls.target]);
        return null;
    }
    const parent = this.parentOf(comps, raw);
    const key = comps.join('/');
    switch (e.type) {
      case 'dir':
        this.dir(key, parent, e, raw);
        return null;
      case 'file':
        return this.file(key, parent, e, raw);
      case 'symlink':
        this.symlink(key, parent, e, raw);
        return null;
      case 'hardlink':
        this.hardlink(key, parent, e, raw);
        return null;
      case 'char':
      case 'block':
      case 'fifo':
        this.device(key, parent, e, raw);
        return null;
    }
  }

  private skipAufs(raw: string): null {
    if (!this.aufsWarned) this.warn(`AUFS metadata (${q(raw)} and the like) skipped`);
    this.aufsWarned = true;
    return null;
  }

  /**
   * The directory node that holds comps' last element, making missing parents.
   * Refuses a parent that is a symlink; a parent that is a whiteout of this layer
   * becomes an opaque directory (the layer deleted it below, then made it anew).
   */
  private parentOf(comps: string[], raw: string): Node {
    if (comps.length === 1) return this.rootNode;
    const direct = this.nodes.get(comps.slice(0, -1).join('/'));
    // Invariant: a node is in the map only if all its ancestors are directories there.
    if (direct && direct.entry.type === 'd') return direct;
    let parent = this.rootNode;
    let key = '';
    for (let i = 0; i < comps.length - 1; i++) {
      key = i === 0 ? comps[0] : `${key}/${comps[i]}`;
      let n = this.nodes.get(key);
      if (!n) {
        n = this.mkdirImplicit(key, parent);
      } else if (n.entry.type === 'l') {
        throw this.unsafe(`entry ${q(raw)} would be written through symlink ${q(key)}`);
      } else if (n.whiteout) {
        this.remove(key, n, parent);
        n = this.mkdirImplicit(key, parent);
        this.setOpaque(n);
      } else if (n.entry.type !== 'd') {
        throw this.bad(`entry ${q(raw)}: ${q(key)} is not a directory`);
      }
      parent = n;
    }
    return parent;
  }

  private add(key: string, node: Node, parent: Node): Node {
    this.nodes.set(key, node);
    parent.children!.add(key);
    return node;
  }

  private newNode(key: string, type: TreeEntry['type'], mode: number, uid: number, gid: number, data = ''): Node {
    return { entry: { path: key, type, mode, uid, gid, size: 0, data, xattrs: [] }, ino: 0 };
  }

  private mkdirImplicit(key: string, parent: Node): Node {
    const abs = this.abs(key);
    fs.mkdirSync(abs, 0o755);
    fs.lchownSync(abs, 0, 0);
    fs.chmodSync(abs, 0o755);
    const n = this.newNode(key, 'd', 0o755, 0, 0);
    n.children = new Set();
    return this.add(key, n, parent);
  }

  /** Removes what this layer has at key (a directory with all below it). */
  private remove(key: string, node: Node, parent: Node): void {
    const abs = this.abs(key);
    if (node.entry.type === 'd') {
      fs.rmSync(abs, { recursive: true, force: true });
      this.forget(node);
    } else {
      fs.unlinkSync(abs);
    }
    this.nodes.delete(key);
    parent.children!.delete(key);
  }

  private forget(dir: Node): void {
    for (const child of dir.children ?? []) {
      const n = this.nodes.get(child);
      if (n?.children) this.forget(n);
      this.nodes.delete(child);
    }
  }

  /** Replaces whatever is at key (non-directory entries: later wins). Returns whether it was a whiteout. */
  private clear(key: string, parent: Node): boolean {
    const prev = this.nodes.get(key);
    if (!prev) return false;
    this.remove(key, prev, parent);
    return prev.whiteout === true;
  }

  private setOpaque(dir: Node): void {
    if (dir.entry.xattrs.some(([n]) => n === OVERLAY_OPAQUE_XATTR)) return;
    const value = Buffer.from('y');
    try {
      sys().lsetxattr(this.abs(dir.entry.path), OVERLAY_OPAQUE_XATTR, value);
    } catch (e) {
      throw new TspodError(
        ErrorCode.System,
        `${this.what}: cannot mark ${q(dir.entry.path)} opaque (${OVERLAY_OPAQUE_XATTR}): ${e instanceof Error ? e.message : String(e)}`,
        { hint: 'the store must be on a filesystem with trusted xattrs (ext4, xfs, btrfs), and tspod must run as root', cause: e },
      );
    }
    dir.entry.xattrs.push([OVERLAY_OPAQUE_XATTR, value]);
  }

  /**
   * The directory a whiteout or opaque marker applies to, made if missing; or
   * undefined when a parent is a non-directory of this layer (a file, symlink,
   * device or whiteout), which already hides everything of the lower layers under
   * that name: then the marker has nothing to do and nothing is written. (umoci,
   * for one, writes `d` as a file and then `d/.wh.child` when a file replaces a
   * directory.)
   */
  private markerParent(comps: string[]): Node | undefined {
    let parent = this.rootNode;
    let key = '';
    for (let i = 0; i < comps.length - 1; i++) {
      key = i === 0 ? comps[0] : `${key}/${comps[i]}`;
      const n = this.nodes.get(key);
      if (!n) parent = this.mkdirImplicit(key, parent);
      else if (n.entry.type === 'd') parent = n;
      else return undefined;
    }
    return parent;
  }

  private whiteout(comps: string[]): void {
    const parent = this.markerParent(comps);
    if (!parent) return;
    const key = comps.join('/');
    const n = this.nodes.get(key);
    if (n) {
      // The whiteout hides only the lower layers' <name>; this layer's <name> stays.
      if (n.entry.type === 'd') this.setOpaque(n);
      return;
    }
    const abs = this.abs(key);
    sys().mknod(abs, S_IFCHR, 0n);
    fs.lchownSync(abs, 0, 0);
    const w = this.newNode(key, 'c', 0, 0, 0, '0:0');
    w.whiteout = true;
    this.add(key, w, parent);
  }

  /** The xattrs of an entry that tspod applies; warns about the others. */
  private wantedXattrs(e: TarEntry, raw: string): Array<[string, Buffer]> {
    return [...e.xattrs].filter(([name]) => {
      if (isOverlayXattr(name)) {
        this.warn(`entry ${q(raw)}: overlayfs xattr ${name} ignored`);
        return false;
      }
      return true;
    });
  }

  /** Sets xattrs on a node, recording the ones that took; warns about the rest. */
  private applyXattrs(node: Node, list: Array<[string, Buffer]>, raw: string, fd = -1): void {
    for (const [name, value] of list) {
      try {
        if (fd >= 0) sys().fsetxattr(fd, name, value);
        else sys().lsetxattr(this.abs(node.entry.path), name, value);
      } catch (err) {
        this.warn(`entry ${q(raw)}: xattr ${name} not set (${errnoCode(err) ?? String(err)})`);
        continue;
      }
      const i = node.entry.xattrs.findIndex(([n]) => n === name);
      if (i >= 0) node.entry.xattrs[i] = [name, value];
      else node.entry.xattrs.push([name, value]);
      if (name === ACL_ACCESS) {
        // An access ACL rewrites the permission bits; record what the kernel made of them.
        const st = fd >= 0 ? fs.fstatSync(fd) : fs.lstatSync(this.abs(node.entry.path));
        node.entry.mode = st.mode & 0o7777;
      }
    }
  }

  private dir(key: string, parent: Node, e: TarEntry, raw: string): void {
    const prev = this.nodes.get(key);
    if (prev && prev.entry.type === 'd') {
      this.updateDir(prev, e, raw);
      return;
    }
    const wasWhiteout = this.clear(key, parent);
    const abs = this.abs(key);
    fs.mkdirSync(abs, 0o700);
    const n = this.newNode(key, 'd', e.mode, e.uid, e.gid);
    n.children = new Set();
    this.add(key, n, parent);
    this.updateDir(n, e, raw);
    if (wasWhiteout) this.setOpaque(n);
  }

  /** Applies a directory entry's metadata to an existing directory (times deferred). */
  private updateDir(n: Node, e: TarEntry, raw: string): void {
    const abs = this.abs(n.entry.path);
    fs.lchownSync(abs, e.uid, e.gid);
    fs.chmodSync(abs, e.mode);
    n.entry.uid = e.uid;
    n.entry.gid = e.gid;
    n.entry.mode = e.mode;
    const wanted = this.wantedXattrs(e, raw);
    const names = new Set(wanted.map(([name]) => name));
    // The entry's xattrs replace the old ones, except overlay markers set by this layer.
    for (const [name] of n.entry.xattrs) {
      if (!isOverlayXattr(name) && !names.has(name)) sys().lremovexattr(abs, name);
    }
    n.entry.xattrs = n.entry.xattrs.filter(([name]) => isOverlayXattr(name));
    n.aclDefault = wanted.find(([name]) => name === ACL_DEFAULT)?.[1];
    this.applyXattrs(
      n,
      wanted.filter(([name]) => name !== ACL_DEFAULT),
      raw,
    );
    n.mtime = e.mtime;
    n.atime = e.atime;
  }

  private file(key: string, parent: Node, e: TarEntry, raw: string): TarBodySink {
    this.clear(key, parent);
    const fd = fs.openSync(this.abs(key), O_CREATE_NEW, 0o600);
    this.openFd = fd;
    const n = this.newNode(key, 'f', e.mode, e.uid, e.gid);
    n.ino = this.nextIno++;
    this.add(key, n, parent);
    const hash = createHash('sha256');
    let written = 0;
    return {
      write: (data: Buffer) => {
        hash.update(data);
        let off = 0;
        while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
        written += data.length;
      },
      end: () => {
        // chown before chmod (chown clears setuid/setgid), xattrs after chown
        // (it clears security.capability), times last.
        fs.fchownSync(fd, e.uid, e.gid);
        fs.fchmodSync(fd, e.mode);
        this.applyXattrs(n, this.wantedXattrs(e, raw), raw, fd);
        fs.futimesSync(fd, e.atime, e.mtime);
        this.openFd = -1;
        fs.closeSync(fd);
        n.entry.size = written;
        n.entry.data = hash.digest('hex');
      },
    };
  }

  private symlink(key: string, parent: Node, e: TarEntry, raw: string): void {
    if (e.linkpath === '') throw this.bad(`symlink ${q(raw)} has no target`);
    this.clear(key, parent);
    const abs = this.abs(key);
    fs.symlinkSync(e.linkpath, abs);
    fs.lchownSync(abs, e.uid, e.gid);
    const n = this.add(key, this.newNode(key, 'l', 0o777, e.uid, e.gid, e.linkpath), parent);
    this.applyXattrs(n, this.wantedXattrs(e, raw), raw);
    fs.lutimesSync(abs, e.atime, e.mtime);
  }

  private device(key: string, parent: Node, e: TarEntry, raw: string): void {
    this.clear(key, parent);
    const abs = this.abs(key);
    const typeBits = e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : S_IFIFO;
    const isDev = e.type !== 'fifo';
    sys().mknod(abs, typeBits | e.mode, isDev ? makedev(e.devmajor, e.devminor) : 0n);
    fs.lchownSync(abs, e.uid, e.gid);
    fs.chmodSync(abs, e.mode); // mknod's mode went through the umask
    const type = e.type === 'char' ? 'c' : e.type === 'block' ? 'b' : 'p';
    const n = this.add(key, this.newNode(key, type, e.mode, e.uid, e.gid, isDev ? `${e.devmajor}:${e.devminor}` : ''), parent);
    if (e.type === 'char' && e.devmajor === 0 && e.devminor === 0) n.whiteout = true;
    this.applyXattrs(n, this.wantedXattrs(e, raw), raw);
    fs.lutimesSync(abs, e.atime, e.mtime);
  }

  private hardlink(key: string, parent: Node, e: TarEntry, raw: string): void {
    const label = `hardlink ${q(raw)} target ${q(e.linkpath)}`;
    const tcomps = this.components(e.linkpath, () => label);
    if (tcomps.length === 0) throw this.bad(`${label} is the layer's root directory`);
    const tkey = tcomps.join('/');
    if (tkey === key) {
      if (this.nodes.has(key)) return; // a link to itself: nothing to do
      throw this.bad(`${label} does not exist`);
    }
    const found = this.lookupTarget(tcomps, label);
    if (found.kind === 'here') {
      this.clear(key, parent);
      if (this.nodes.get(tkey) !== found.node) throw this.bad(`${label} was removed by the hardlink itself`);
      fs.linkSync(this.abs(tkey), this.abs(key));
      const t = found.node;
      const n: Node = { entry: { ...t.entry, path: key, xattrs: [...t.entry.xattrs] }, ino: t.ino, whiteout: t.whiteout };
      this.add(key, n, parent);
      return;
    }
    const lower = found.kind === 'absent' && found.lowerVisible ? this.findInLowers(tcomps, label) : undefined;
    if (!lower) throw new MissingLinkTargetError(`${this.what}: ${label} does not exist in this layer${this.lowers.length ? ' or the layers below it' : ''}`);
    this.clear(key, parent);
    this.copyIn(lower, key, parent, raw);
    this.warn(`${label} is in a lower layer; stored as a copy`);
  }

  /** Where a hardlink target is, as far as this layer knows. */
  private lookupTarget(tcomps: string[], label: string): TargetLookup {
    let lowerVisible = !this.isOpaque(this.rootNode);
    let key = '';
    for (let i = 0; i < tcomps.length - 1; i++) {
      key = i === 0 ? tcomps[0] : `${key}/${tcomps[i]}`;
      const n = this.nodes.get(key);
      if (!n) return { kind: 'absent', lowerVisible };
      if (n.entry.type === 'l') throw this.unsafe(`${label} goes through symlink ${q(key)}`);
      if (n.entry.type !== 'd') return { kind: 'deleted' };
      if (this.isOpaque(n)) lowerVisible = false;
    }
    const n = this.nodes.get(tcomps.join('/'));
    if (!n) return { kind: 'absent', lowerVisible };
    if (n.whiteout) return { kind: 'deleted' };
    if (n.entry.type === 'd') throw this.bad(`${label} is a directory`);
    return { kind: 'here', node: n };
  }

  private isOpaque(n: Node): boolean {
    return n.entry.xattrs.some(([name]) => name === OVERLAY_OPAQUE_XATTR);
  }

  /**
   * The path as the layers below would show it (overlay rules, native/overlay.ts),
   * never through a symlink of theirs: such a path refuses the layer.
   */
  private findInLowers(tcomps: string[], label: string): { entry: ImageEntry; st: fs.BigIntStats } | undefined {
    if (this.lowers.length === 0) return undefined;
    this.lowerImage ??= new ImageFs([...this.lowers].reverse());
    const found = this.lowerImage.lookupNoFollow(tcomps.join('/'));
    if (!found) return undefined;
    if (found.through !== undefined) throw this.unsafe(`${label} goes through symlink ${q(found.through.slice(1))} of a lower layer`);
    const { entry } = found;
    if (entry.stat.isDirectory()) throw this.bad(`${label} is a directory`);
    const st = fs.lstatSync(entry.hostPath, { bigint: true });
    if (BigInt(entry.stat.ino) !== st.ino || BigInt(entry.stat.dev) !== st.dev) throw this.bad(`${label} changed in a lower layer while it was being read`);
    return { entry, st };
  }

  /** A copy of a lower layer's file (or symlink, device, fifo) as a new entry here. */
  private copyIn(src: { entry: ImageEntry; st: fs.BigIntStats }, key: string, parent: Node, raw: string): void {
    const { st } = src;
    const abs = this.abs(key);
    const type = typeOf(st);
    const mode = Number(st.mode & 0o7777n);
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    const atime = Number(st.atimeNs) / 1e9;
    const mtime = Number(st.mtimeNs) / 1e9;
    const srcPath = src.entry.hostPath;
    const xattrs = sys().lxattrs(srcPath).filter(([name]) => !isOverlayXattr(name));
    if (type === 'f') {
      const n = this.newNode(key, 'f', mode, uid, gid);
      n.ino = this.nextIno++;
      const hash = createHash('sha256');
      const buf = Buffer.allocUnsafe(1 << 20);
      const inFd = openEntry(src.entry);
      try {
        const outFd = fs.openSync(abs, O_CREATE_NEW, 0o600);
        this.add(key, n, parent);
        try {
          for (;;) {
            const got = fs.readSync(inFd, buf, 0, buf.length, null);
            if (got === 0) break;
            hash.update(buf.subarray(0, got));
            let off = 0;
            while (off < got) off += fs.writeSync(outFd, buf, off, got - off);
            n.entry.size += got;
          }
          fs.fchownSync(outFd, uid, gid);
          fs.fchmodSync(outFd, mode);
          this.applyXattrs(n, xattrs, raw, outFd);
          fs.futimesSync(outFd, atime, mtime);
        } finally {
          fs.closeSync(outFd);
        }
      } finally {
        fs.closeSync(inFd);
      }
      n.entry.data = hash.digest('hex');
      return;
    }
    if (type === 'l') {
      const target = fs.readlinkSync(srcPath);
      fs.symlinkSync(target, abs);
      fs.lchownSync(abs, uid, gid);
      const n = this.add(key, this.newNode(key, 'l', 0o777, uid, gid, target), parent);
      this.applyXattrs(n, xattrs, raw);
      fs.lutimesSync(abs, atime, mtime);
      return;
    }
    if (type === 'c' || type === 'b' || type === 'p') {
      sys().mknod(abs, Number(st.mode & 0o170000n) | mode, st.rdev);
      fs.lchownSync(abs, uid, gid);
      fs.chmodSync(abs, mode);
      const data = type === 'p' ? '' : `${devMajor(st.rdev)}:${devMinor(st.rdev)}`;
      const n = this.add(key, this.newNode(key, type, mode, uid, gid, data), parent);
      this.applyXattrs(n, xattrs, raw);
      fs.lutimesSync(abs, atime, mtime);
      return;
    }
    throw this.bad(`hardlink ${q(raw)}: its target in a lower layer is a socket`);
  }

  /** Deferred work: default ACLs, then directory times (after everything inside is written). */
  finish(): void {
    for (const n of this.nodes.values()) {
      if (n.entry.type !== 'd') continue;
      const abs = this.abs(n.entry.path);
      if (n.aclDefault) this.applyXattrs(n, [[ACL_DEFAULT, n.aclDefault]], n.entry.path);
      if (n.mtime !== undefined) fs.lutimesSync(abs, n.atime ?? n.mtime, n.mtime);
    }
    if (this.droppedWarnings > 0) this.warnings.push(`${this.what}: ... and ${this.droppedWarnings} more warnings`);
  }

  abort(): void {
    if (this.openFd >= 0) {
      try {
        fs.closeSync(this.openFd);
      } catch {
        // already closed
      }
      this.openFd = -1;
    }
  }

  result(): UnpackResult {
    const entries: TreeEntry[] = [];
    const seen = new Set<number>();
    let size = 0;
    for (const n of this.nodes.values()) {
      entries.push(n.entry);
      if (n.entry.type === 'f' && !seen.has(n.ino)) {
        seen.add(n.ino);
        size += n.entry.size;
      }
    }
    return { treeHash: treeDigest(entries), entries: entries.length - 1, size, warnings: this.warnings };
  }
}
