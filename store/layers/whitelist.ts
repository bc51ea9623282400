// appc's pathWhitelist as a layer. An ACI whose manifest has a non-empty
// pathWhitelist shows, once rendered, only the listed paths (appc spec aci.md: "a
// complete and absolute set"). tspod renders by stacking layers (overlayfs, or
// render.ts by overlay's rules), so the whitelist becomes one more layer on top
// of the image's own: a whiteout for every entry of the merged tree below that is
// neither listed nor a directory above a listed path. A whiteout on a directory
// hides everything under it, so an unlisted subtree costs one entry.
//
// Directories that must exist in this layer to hold a whiteout take the merged
// directory's owner, mode, times and xattrs (overlay shows the topmost copy's), so
// the layer changes nothing but what it hides. It is made at fetch, once the
// dependencies are known, and stored like any layer (store/importer.ts).
import fs from 'node:fs';
import path from 'node:path';
import { S_IFCHR, sys } from '../../native/sys.js';
import { isOverlayXattr, NUMBER_STATS, overlayChild, overlayNames, overlayRoots } from '../../native/overlay.js';

/** `/a/b/` → `/a/b`; the whitelist's paths are absolute without `..` (checked at fetch). */
function normal(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/**
 * Fills `dest` (an empty directory: the layer's rootfs) with the whiteouts that
 * apply `whitelist` over `layerRootfs` (lowest first). Returns how many.
 */
export function makeWhitelistLayer(layerRootfs: string[], whitelist: string[], dest: string): number {
  const keep = new Set(whitelist.map(normal));
  const above = new Set<string>();
  for (const p of keep) {
    for (let d = path.posix.dirname(p); d !== '/'; d = path.posix.dirname(d)) above.add(d);
  }
  const roots = overlayRoots([...layerRootfs].reverse(), NUMBER_STATS).map((p) => p.host);
  fs.mkdirSync(dest, { recursive: true });
  const times: Array<{ dir: string; st: fs.Stats }> = [];
  const copyDir = (top: string, dir: string): void => {
    const st = fs.lstatSync(top);
    fs.lchownSync(dir, st.uid, st.gid);
    fs.chmodSync(dir, st.mode & 0o7777);
    for (const [name, value] of sys().lxattrs(top)) if (!isOverlayXattr(name)) sys().lsetxattr(dir, name, value);
    times.push({ dir, st });
  };
  if (roots.length === 0) return 0;
  copyDir(roots[0], dest);
  let whiteouts = 0;

  /** Walks the merged directory `rel` (`` for the root) made of `srcs` (top first). */
  const walk = (srcs: string[], rel: string, ensure: () => string): void => {
    for (const name of [...overlayNames(srcs)].sort()) {
      const p = `${rel}/${name}`;
      const child = overlayChild(srcs, name, NUMBER_STATS);
      if (!child) continue; // hidden already
      const below = child.dirs?.map((d) => d.host) ?? [];
      if (below.length > 0 && (keep.has(p) || above.has(p))) {
        let made: string | undefined;
        walk(below, p, () => {
          if (made === undefined) {
            made = path.join(ensure(), name);
            fs.mkdirSync(made);
            copyDir(below[0], made);
          }
          return made;
        });
        continue;
      }
      if (keep.has(p)) continue;
      const at = path.join(ensure(), name);
      sys().mknod(at, S_IFCHR, 0n);
      fs.lchownSync(at, 0, 0);
      whiteouts++;
    }
  };
  walk(roots, '', () => dest);
  for (const { dir, st } of times.reverse()) fs.utimesSync(dir, st.atime, st.mtime);
  return whiteouts;
}
