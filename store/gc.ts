// Image garbage collection. The store knows nothing of its users: what they keep
// alive (gc roots, containerd's model) is computed by them and handed in
// (stage0/image-gc.ts computes the roots of the pods on disk). An ACI's
// dependencies are kept while an image that needs them is kept.
import fs from 'node:fs';
import path from 'node:path';
import { log } from '../native/log.js';
import { safeReaddir } from './blobs.js';
import type { Store } from './store.js';

/** What the store's users still use; nothing named here is collected. */
export interface GcRoots {
  /** Images that stay whatever their age (with their dependencies, layers and blobs). */
  images: Set<string>;
  /** Layers that stay though no remaining image may name them. */
  layers: Set<string>;
}

export interface ImageGcReport {
  removedImages: string[];
  keptInUse: string[];
  removedLayers: string[];
  removedBlobs: number;
}

/**
 * Removes images not used for `graceMs` and not roots, then every layer and blob
 * that no remaining image and no root refers to. Runs with the store lock held
 * exclusively, so no fetch or prepare is halfway through adding references;
 * `roots` is called under that lock.
 */
export async function imageGc(store: Store, graceMs: number, roots: () => GcRoots, now = Date.now()): Promise<ImageGcReport> {
  return store.exclusive(() => {
    const kept = roots();
    const report: ImageGcReport = { removedImages: [], keptInUse: [], removedLayers: [], removedBlobs: 0 };
    const all = store.images.all();
    const expired = new Set<string>();
    for (const img of all) {
      if (now - img.lastUsed < graceMs) continue;
      if (kept.images.has(img.record.id)) {
        report.keptInUse.push(img.record.id);
        continue;
      }
      expired.add(img.record.id);
    }
    // An ACI's dependencies stay as long as an image that needs them stays.
    const byId = new Map(all.map((img) => [img.record.id, img]));
    const todo = all.filter((img) => !expired.has(img.record.id)).flatMap((img) => img.record.dependencies ?? []);
    const needed = new Set<string>();
    while (todo.length) {
      const dep = todo.pop()!;
      if (needed.has(dep)) continue;
      needed.add(dep);
      todo.push(...(byId.get(dep)?.record.dependencies ?? []));
    }
    for (const img of all) {
      if (!expired.has(img.record.id)) continue;
      if (needed.has(img.record.id)) {
        log().debug(`image gc: keeping ${img.record.id}, a dependency of an image that stays`);
        continue;
      }
      store.images.remove(img.record.id);
      report.removedImages.push(img.record.id);
    }
    sweepUnreferenced(store, kept.layers, report);
    return report;
  });
}

/** Layers and blobs that no image and no root refers to, and the lock files of what is gone. */
function sweepUnreferenced(store: Store, rootLayers: Set<string>, report: Pick<ImageGcReport, 'removedLayers' | 'removedBlobs'>): void {
  const usedLayers = new Set(rootLayers);
  const usedBlobs = new Set<string>();
  for (const img of store.images.all()) {
    img.record.layers.forEach((l) => usedLayers.add(l));
    for (const d of [img.record.manifestDigest, img.record.configDigest, img.record.indexDigest, img.record.aciBlob]) if (d) usedBlobs.add(d);
  }
  for (const layer of store.layers.list()) {
    if (usedLayers.has(layer)) continue;
    store.layers.remove(layer);
    report.removedLayers.push(layer);
  }
  for (const blob of store.blobs.list()) {
    if (usedBlobs.has(blob)) continue;
    store.blobs.remove(blob);
    report.removedBlobs++;
  }
  for (const f of safeReaddir(store.paths.locksDir)) {
    const layer = /^layer-(.+)\.lock$/.exec(f);
    const image = /^image-(.+)\.lock$/.exec(f);
    if ((layer && !usedLayers.has(layer[1])) || (image && !store.images.has(image[1]))) {
      fs.rmSync(path.join(store.paths.locksDir, f), { force: true });
    }
  }
}
