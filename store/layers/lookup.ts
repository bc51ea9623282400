// Looking at an image's files without rendering it: a path is resolved through
// the stack of layer directories the way overlayfs would (upper layers first,
// whiteouts hide, opaque directories stop the search), with symlinks followed
// inside the image root, never out of it, and no symlink ever followed on the
// host. The resolver itself is native/image-fs.ts (stage1 uses it too); this
// module is the store's view of it.
import path from 'node:path';
import { ImageFs, type ImageEntry } from '../../native/image-fs.js';

export { ImageFs };

/** An entry of an image: `hostPath` is the real file in a layer directory, reached without following a symlink. */
export type Found = ImageEntry;

/**
 * Resolves `p` (absolute, inside the image) through the layers, lowest first as
 * stored in image records. Returns undefined if the image has no such file.
 */
export function lookupInLayers(layersLowestFirst: string[], p: string, followFinal = true): Found | undefined {
  return new ImageFs(layersLowestFirst).resolve(p, { followFinal });
}

/** The text of a regular file of the image (symlinks followed inside the image), or undefined. */
export function readFileInLayers(layersLowestFirst: string[], p: string): string | undefined {
  return new ImageFs(layersLowestFirst).readFile(p)?.toString('utf8');
}

/** Finds an executable the way execvp would, with PATH from the app's environment. */
export function findExecutable(layersLowestFirst: string[], file: string, pathVar: string): Found | undefined {
  const candidates = file.includes('/') ? [file.startsWith('/') ? file : `/${file}`] : pathVar.split(':').filter(Boolean).map((d) => path.posix.join(d, file));
  const image = new ImageFs(layersLowestFirst);
  for (const c of candidates) {
    const f = image.resolve(c);
    if (f && f.stat.isFile() && f.stat.mode & 0o111) return f;
  }
  return undefined;
}
