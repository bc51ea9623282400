// The two whiteout conventions tspod deals with, and the names they reserve.
//
// OCI layers (image-spec layer.md) mark deletions with special file names:
//   `.wh.<name>`    deletes <name> from the layers below;
//   `.wh..wh..opq`  hides everything the layers below have in that directory.
// Unpacked layers are overlayfs lower directories, so unpack.ts turns them into
// overlayfs's own markers:
//   a character device 0:0 named <name>, and
//   the xattr trusted.overlay.opaque=y on the directory.
// What the overlayfs form means when layers are merged (whiteouts, opaque
// directories) is native/overlay.ts, the one place of overlay's rules.

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
/** `.wh..wh.*` other than the opaque marker: AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`). */
export const AUFS_META_PREFIX = '.wh..wh.';

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
