// Looking at an image's files without rendering it: a path is resolved through
// the stack of layer directories the way overlayfs would (upper layers first,
// whiteouts hide, opaque directories stop the search), with symlinks followed
// inside the image root, never out of it.
import fs from 'node:fs';
import path from 'node:path';
import { lgetxattr } from '../../native/libc.js';

const MAX_SYMLINKS = 40;

/** The layer directory that provides `rel` (a path relative to the image root, no symlinks in it). */
function provider(layersTopFirst: string[], rel: string): { layer: string; stat: fs.Stats } | undefined {
  const parts = rel.split('/').filter(Boolean);
  for (const layer of layersTopFirst) {
    // A whiteout or opaque directory on the way down hides the lower layers.
    let hidden = false;
    for (let i = 1; i <= parts.length; i++) {
      const p = path.join(layer, ...parts.slice(0, i));
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        break;
      }
      if (st.isCharacterDevice() && st.rdev === 0) {
        return undefined;
      }
      if (i === parts.length) return { layer, stat: st };
      if (!st.isDirectory()) {
        hidden = true;
        break;
      }
      if (isOpaque(p)) {
        // Nothing below this layer exists under p; keep looking only in this layer.
        const rest = path.join(layer, ...parts);
        try {
          return { layer, stat: fs.lstatSync(rest) };
        } catch {
          return undefined;
        }
      }
    }
    if (hidden) return undefined;
  }
  if (parts.length === 0 && layersTopFirst.length) return { layer: layersTopFirst[0], stat: fs.lstatSync(layersTopFirst[0]) };
  return undefined;
}

function isOpaque(dir: string): boolean {
  const v = lgetxattr(dir, 'trusted.overlay.opaque');
  return v !== undefined && v.toString() === 'y';
}

export interface Found {
  /** The real file in a layer directory. */
  hostPath: string;
  /** The path inside the image after following symlinks. */
  imagePath: string;
  stat: fs.Stats;
}

/**
 * Resolves `p` (absolute, inside the image) through the layers, lowest first as
 * stored in image records. Returns undefined if the image has no such file.
 */
export function lookupInLayers(layersLowestFirst: string[], p: string, followFinal = true): Found | undefined {
  const top = [...layersLowestFirst].reverse();
  let pending = p.split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const name = pending.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      done.pop();
      continue;
    }
    const rel = [...done, name].join('/');
    const hit = provider(top, rel);
    if (!hit) return undefined;
    const isLast = pending.length === 0;
    if (hit.stat.isSymbolicLink() && (!isLast || followFinal)) {
      if (++links > MAX_SYMLINKS) return undefined;
      const target = fs.readlinkSync(path.join(hit.layer, rel));
      if (target.startsWith('/')) done.length = 0;
      pending = [...target.split('/').filter(Boolean), ...pending];
      continue;
    }
    done.push(name);
    if (isLast) return { hostPath: path.join(hit.layer, rel), imagePath: `/${rel}`, stat: hit.stat };
  }
  const root = top[0];
  return root ? { hostPath: root, imagePath: '/', stat: fs.lstatSync(root) } : undefined;
}

export function readFileInLayers(layersLowestFirst: string[], p: string): string | undefined {
  const f = lookupInLayers(layersLowestFirst, p);
  if (!f || !f.stat.isFile()) return undefined;
  return fs.readFileSync(f.hostPath, 'utf8');
}

/** Finds an executable the way execvp would, with PATH from the app's environment. */
export function findExecutable(layersLowestFirst: string[], file: string, pathVar: string): Found | undefined {
  const candidates = file.includes('/') ? [file.startsWith('/') ? file : `/${file}`] : pathVar.split(':').filter(Boolean).map((d) => path.posix.join(d, file));
  for (const c of candidates) {
    const f = lookupInLayers(layersLowestFirst, c);
    if (f && f.stat.isFile() && f.stat.mode & 0o111) return f;
  }
  return undefined;
}
