// Flattens unpacked layers into one tree, as overlayfs would show them to stage2:
// for --no-overlay pods, `image extract`/`export`, and filesystems without overlay.
//
// The merge follows overlayfs's lookup rules (native/overlay.ts), walking all
// layers at once from the top: at each name the topmost layer that has it
// decides. Nothing is ever followed: a layer's symlink is copied as a symlink, and a symlink to a
// directory in a lower layer under a real directory of an upper layer is hidden
// by it (the result is a directory, as with overlayfs).
//
// Copies keep modes, owners, times, xattrs (not trusted.overlay.* / user.overlay.*),
// symlinks, devices and fifos. Names that share an inode in a layer share one in
// the result (hardlinks are re-made, not copied twice). Directory times and default
// ACLs are applied last, so that filling a directory does not change them.
import fs from 'node:fs';
import path from 'node:path';
import { sys } from '../../native/sys.js';
import { BIGINT_STATS, isOverlayXattr, overlayChild, overlayNames, overlayRoots } from '../../native/overlay.js';

const ACL_DEFAULT = 'system.posix_acl_default';
const COPY_CONCURRENCY = 8;

/**
 * Renders layers (lowest first) into `dest`, which is created if missing and
 * should be empty. A layer path that does not exist is skipped; one that is not a
 * directory hides the layers below it (useful when rendering a sub-path of an
 * image). `dest` takes the mode, owner and xattrs of the topmost layer's root.
 *
 * The given paths are used as they are: pass layer directories, or directories
 * inside them that were reached without following a symlink (ImageEntry.merged
 * from native/image-fs.ts), never `path.join(layer, imagePath)`, which follows
 * whatever symlinks a layer has on the way. Below them nothing is followed.
 */
export async function renderLayers(layerRootfs: string[], dest: string): Promise<void> {
  const roots = topDirs([...layerRootfs].reverse().map((p) => path.resolve(p)));
  const out = path.resolve(dest);
  fs.mkdirSync(out, { recursive: true, mode: 0o755 });
  if (roots.length === 0) return;
  const r = new Renderer();
  try {
    await r.dir(roots, out, true);
  } finally {
    await r.settle();
  }
  r.finish();
}

/**
 * The layers (lowest first) that an overlay mount needs: those below a layer
 * whose root is opaque (`.wh..wh..opq` at the top of a layer) are hidden, which
 * overlayfs does not do by itself for a lower directory's root.
 */
export function visibleLayers(layerRootfs: string[]): string[] {
  return topDirs([...layerRootfs].reverse().map((p) => path.resolve(p))).reverse();
}

/** Of the given paths (top first), the directories that merge, by overlay rules. */
function topDirs(paths: string[]): string[] {
  return overlayRoots(paths, BIGINT_STATS).map((p) => p.host);
}

/**
 * Copies the regular file `src` (lstat `st`) to the new file `dest`. The source
 * is opened with O_NOFOLLOW and must still be the inode that was listed, so a
 * name that became a symlink in the meantime is never read through.
 */
async function copyRegular(src: string, st: fs.BigIntStats, dest: string): Promise<void> {
  const fh = await fs.promises.open(src, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const now = await fh.stat({ bigint: true });
    if (!now.isFile() || now.dev !== st.dev || now.ino !== st.ino) throw new Error(`${src} changed while it was being copied`);
    // The kernel reopens the file through the fd's magic link: no path lookup again.
    await fs.promises.copyFile(`/proc/self/fd/${fh.fd}`, dest, fs.constants.COPYFILE_EXCL);
  } finally {
    await fh.close();
  }
}

function seconds(ns: bigint): number {
  return Number(ns) / 1e9;
}

interface DirTodo {
  abs: string;
  atime: number;
  mtime: number;
  aclDefault?: Buffer;
}

class Renderer {
  private readonly dirs: DirTodo[] = [];
  /** dev:ino of a multiply-linked source file → its first copy, once written. */
  private readonly links = new Map<string, Promise<string>>();
  private readonly running = new Set<Promise<void>>();
  private readonly errors: unknown[] = [];

  /** Copies a directory's metadata and merges its children from `srcs` (top first). */
  async dir(srcs: string[], dest: string, isRoot = false): Promise<void> {
    const top = srcs[0];
    const st = fs.lstatSync(top, { bigint: true });
    if (!isRoot) fs.mkdirSync(dest, 0o700);
    fs.lchownSync(dest, Number(st.uid), Number(st.gid));
    fs.chmodSync(dest, Number(st.mode & 0o7777n));
    const aclDefault = sys().lxattrs(top).find(([name]) => name === ACL_DEFAULT)?.[1];
    this.copyXattrs(top, dest, ACL_DEFAULT);
    this.dirs.push({ abs: dest, atime: seconds(st.atimeNs), mtime: seconds(st.mtimeNs), aclDefault });

    for (const name of overlayNames(srcs)) {
      const child = overlayChild(srcs, name, BIGINT_STATS);
      const target = `${dest}/${name}`;
      if (child?.dirs) await this.dir(child.dirs.map((d) => d.host), target);
      else if (child?.leaf) await this.leaf(child.leaf.host, child.leaf.stat, target);
    }
  }

  private async leaf(src: string, st: fs.BigIntStats, dest: string): Promise<void> {
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    const mode = Number(st.mode & 0o7777n);
    const atime = seconds(st.atimeNs);
    const mtime = seconds(st.mtimeNs);
    if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      if (st.nlink > 1n) {
        const first = this.links.get(key);
        if (first) {
          fs.linkSync(await first, dest);
          return;
        }
      }
      while (this.running.size >= COPY_CONCURRENCY) await Promise.race(this.running);
      const copy = (async () => {
        await copyRegular(src, st, dest);
        // chown first (it clears setuid/setgid and file capabilities).
        fs.lchownSync(dest, uid, gid);
        fs.chmodSync(dest, mode);
        this.copyXattrs(src, dest);
        fs.lutimesSync(dest, atime, mtime);
        return dest;
      })();
      if (st.nlink > 1n) this.links.set(key, copy);
      const task = copy.then(
        () => undefined,
        (e: unknown) => {
          this.errors.push(e);
        },
      );
      this.running.add(task);
      void task.finally(() => this.running.delete(task));
      return;
    }
    if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(src), dest);
      fs.lchownSync(dest, uid, gid);
    } else {
      // devices, fifos, sockets: the same node type and device number
      sys().mknod(dest, Number(st.mode), st.rdev);
      fs.lchownSync(dest, uid, gid);
      fs.chmodSync(dest, mode);
    }
    this.copyXattrs(src, dest);
    fs.lutimesSync(dest, atime, mtime);
  }

  private copyXattrs(src: string, dest: string, except?: string): void {
    for (const [name, value] of sys().lxattrs(src)) {
      if (isOverlayXattr(name) || name === except) continue;
      try {
        sys().lsetxattr(dest, name, value);
      } catch (e) {
        // SELinux labels belong to the host; the target filesystem may refuse them.
        if (name !== 'security.selinux') throw e;
      }
    }
  }

  /** Waits for every copy; throws the first failure. */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
    if (this.errors.length > 0) throw this.errors[0];
  }

  /** Directory times (and default ACLs) once everything inside them is written. */
  finish(): void {
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      const d = this.dirs[i];
      if (d.aclDefault) sys().lsetxattr(d.abs, ACL_DEFAULT, d.aclDefault);
      fs.lutimesSync(d.abs, d.atime, d.mtime);
    }
  }
}
