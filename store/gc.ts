// Image garbage collection and what pods keep alive. An ACI's dependencies are
// kept while an image that needs them is kept.
//
// A pod records what it uses from the store in `<pod dir>/store-refs.json`
// ({"images": [...ids], "layers": [...ids]}), written by stage0 at prepare. Images
// used by pods that are being prepared, prepared or running are never collected,
// and layers stay as long as any image or any pod on disk still uses them.
import fs from 'node:fs';
import path from 'node:path';
import { log } from '../native/log.js';
import { safeReaddir } from './blobs.js';
import type { Store } from './store.js';

export const POD_STORE_REFS = 'store-refs.json';

/** Pod states whose images must stay (rkt keeps images of live pods). */
const LIVE_STATES = ['embryo', 'prepare', 'prepared', 'run'];
/** Every state whose pods still have directories (and so overlay mounts) on disk. */
const ALL_STATES = ['embryo', 'prepare', 'prepared', 'run', 'exited-garbage', 'garbage'];

export interface PodRefs {
  images: Set<string>;
  layers: Set<string>;
}

export function podStoreRefs(podsDir: string, states: string[]): PodRefs {
  const refs: PodRefs = { images: new Set(), layers: new Set() };
  for (const state of states) {
    for (const uuid of safeReaddir(path.join(podsDir, state))) {
      try {
        const r = JSON.parse(fs.readFileSync(path.join(podsDir, state, uuid, POD_STORE_REFS), 'utf8')) as {
          images?: string[];
          layers?: string[];
        };
        r.images?.forEach((i) => refs.images.add(i));
        r.layers?.forEach((l) => refs.layers.add(l));
      } catch {
        /* a pod without refs (still being made, or already gone) */
      }
    }
  }
  return refs;
}

export interface ImageGcReport {
  removedImages: string[];
  keptInUse: string[];
  removedLayers: string[];
  removedBlobs: number;
}

/**
 * Removes images not used for `graceMs` (and not used by a live pod), then every
 * layer and blob no remaining image or pod refers to. Runs with the store lock
 * held exclusively, so no fetch is halfway through adding references.
 */
export async function imageGc(store: Store, graceMs: number, now = Date.now()): Promise<ImageGcReport> {
  return store.exclusive(() => {
    const live = podStoreRefs(store.paths.podsDir, LIVE_STATES);
    const report: ImageGcReport = { removedImages: [], keptInUse: [], removedLayers: [], removedBlobs: 0 };
    const all = store.images.all();
    const expired = new Set<string>();
    for (const img of all) {
      if (now - img.lastUsed < graceMs) continue;
      if (live.images.has(img.record.id)) {
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
    sweepUnreferenced(store, report);
    return report;
  });
}

/** Layers and blobs that no image and no pod on disk refers to. */
export function sweepUnreferenced(store: Store, report: Pick<ImageGcReport, 'removedLayers' | 'removedBlobs'>): void {
  const onDisk = podStoreRefs(store.paths.podsDir, ALL_STATES);
  const usedLayers = new Set(onDisk.layers);
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
  // Lock files of layers and images that are gone.
  for (const f of safeReaddir(store.paths.locksDir)) {
    const layer = /^layer-(.+)\.lock$/.exec(f);
    const image = /^image-(.+)\.lock$/.exec(f);
    if ((layer && !usedLayers.has(layer[1])) || (image && !store.images.has(image[1]))) {
      fs.rmSync(path.join(store.paths.locksDir, f), { force: true });
    }
  }
}
