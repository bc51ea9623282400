// The two whiteout conventions tspod deals with, and the names they reserve.
//
// OCI layers (image-spec layer.md) mark deletions with special file names:
//   `.wh.<name>`    deletes <name> from the layers below;
//   `.wh..wh..opq`  hides everything the layers below have in that directory.
// Unpacked layers are overlayfs lower directories, so unpack.ts turns them into
// overlayfs's own markers:
//   a character device 0:0 named <name>, and
//   the xattr trusted.overlay.opaque=y on the directory.
// render.ts reads the overlayfs form back when it flattens layers by copying.
import type fs from 'node:fs';
import { lgetxattr } from '../../native/libc.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
/** `.wh..wh.*` other than the opaque marker: AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`). */
export const AUFS_META_PREFIX = '.wh..wh.';

export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export type WhiteoutName =
  | { kind: 'none' }
  | { kind: 'opaque' }
  | { kind: 'aufs-meta' }
  | { kind: 'whiteout'; target: string }
  | { kind: 'invalid' };

/** What an entry's base name means under the OCI whiteout rules. */
export function classifyName(base: string): WhiteoutName {
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: 'none' };
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  if (base.startsWith(AUFS_META_PREFIX)) return { kind: 'aufs-meta' };
  const target = base.slice(WHITEOUT_PREFIX.length);
  // `.wh.`, `.wh..` and `.wh...` would delete the directory holding them or its parent.
  if (target === '' || target === '.' || target === '..') return { kind: 'invalid' };
  return { kind: 'whiteout', target };
}

/**
 * overlayfs keeps its own state in trusted.overlay.* (user.overlay.* when mounted
 * with userxattr): opaque, redirect, origin, metacopy... A layer must never bring
 * those in from a tar, and a rendered tree must not carry them out of a layer.
 */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** An overlayfs whiteout: a character device with device number 0:0. */
export function isWhiteoutStat(st: fs.Stats | fs.BigIntStats): boolean {
  return st.isCharacterDevice() && (typeof st.rdev === 'bigint' ? st.rdev === 0n : st.rdev === 0);
}

/** Whether the directory at `path` (not followed if a symlink) is overlay-opaque. */
export function isOpaqueDir(path: string): boolean {
  const v = lgetxattr(path, OVERLAY_OPAQUE_XATTR);
  return v !== undefined && v.length === 1 && v[0] === 0x79; /* 'y' */
}
