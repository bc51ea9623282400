// Image gc with the pods' roots: the store collects (store/gc.ts) and knows
// nothing of pods; stage0 tells it what the pods on disk use, from each pod's
// POD_FILES.storeRefs (written at prepare, stage0/prepare.ts).
import fs from 'node:fs';
import path from 'node:path';
import { POD_FILES } from '../stage1/contract/pod.js';
import { imageGc as collect, type GcRoots, type ImageGcReport } from '../store/gc.js';
import type { Store } from '../store/store.js';
import { PodsDir, STATE_DIRS, type StateDir } from './pods.js';

/** POD_FILES.storeRefs: what a pod uses from the store. */
export interface PodStoreRefs {
  images: string[];
  layers: string[];
}

/** Pod states whose images stay (rkt keeps the images of live pods). */
const LIVE_STATES: readonly StateDir[] = ['embryo', 'prepare', 'prepared', 'run'];

/**
 * The roots of the pods on disk: the images of live pods, and the layers of every
 * pod that still has a directory (an exited pod's overlays may still be mounted).
 * A pod without the file is still being made (its command holds the store lock
 * shared, so gc waits for it) or already gone.
 */
export function podGcRoots(pods: PodsDir): GcRoots {
  const roots: GcRoots = { images: new Set(), layers: new Set() };
  for (const state of STATE_DIRS) {
    for (const uuid of pods.inState(state)) {
      let refs: Partial<PodStoreRefs>;
      try {
        refs = JSON.parse(fs.readFileSync(path.join(pods.podDir(state, uuid), POD_FILES.storeRefs), 'utf8')) as Partial<PodStoreRefs>;
      } catch {
        continue;
      }
      if (LIVE_STATES.includes(state)) refs.images?.forEach((i) => roots.images.add(i));
      refs.layers?.forEach((l) => roots.layers.add(l));
    }
  }
  return roots;
}

/** `tspod image gc`: images unused for `graceMs` and unreferenced layers and blobs go; what pods use stays. */
export function imageGc(store: Store, graceMs: number): Promise<ImageGcReport> {
  return collect(store, graceMs, () => podGcRoots(new PodsDir(store.paths.podsDir)));
}
