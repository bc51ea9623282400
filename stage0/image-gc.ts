// Image gc with the pods' roots: the store collects (store/gc.ts) and knows
// nothing of pods; stage0 tells it what the pods on disk use, from each pod's
// POD_FILES.storeRefs (written at prepare, stage0/prepare.ts).
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import { POD_FILES, readOptionalPodJson } from '../stage1/contract/pod.js';
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

/** States whose pods wrote their store refs at prepare: such a pod always has them. */
const REFS_WRITTEN: readonly StateDir[] = ['prepared', 'run', 'exited-garbage'];

/**
 * The roots of the pods on disk: the images of live pods, and the layers of every
 * pod that still has a directory (an exited pod's overlays may still be mounted).
 * A pod being made has no file yet (its command holds the store lock shared, so
 * gc waits for it); one that went meanwhile adds nothing. A prepared, running or
 * exited pod whose file is missing or damaged stops the collection (one error
 * naming it): collecting without its roots could remove what it runs on.
 */
export function podGcRoots(pods: PodsDir): GcRoots {
  const roots: GcRoots = { images: new Set(), layers: new Set() };
  for (const state of STATE_DIRS) {
    for (const uuid of pods.inState(state)) {
      const refs = readStoreRefs(pods.podDir(state, uuid), REFS_WRITTEN.includes(state));
      if (!refs) continue;
      if (LIVE_STATES.includes(state)) refs.images.forEach((i) => roots.images.add(i));
      refs.layers.forEach((l) => roots.layers.add(l));
    }
  }
  return roots;
}

/** A pod's store refs; undefined when it has none (and need not: `required` false, or the pod went). */
function readStoreRefs(dir: string, required: boolean): PodStoreRefs | undefined {
  const file = path.join(dir, POD_FILES.storeRefs);
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  let refs: PodStoreRefs | undefined;
  try {
    refs = readOptionalPodJson<PodStoreRefs>(dir, POD_FILES.storeRefs, (r) => typeof r === 'object' && r !== null && strings(r.images) && strings(r.layers));
  } catch {
    refs = undefined;
  }
  if (refs) return refs;
  if (!required || !fs.existsSync(dir)) return undefined;
  throw new TspodError(ErrorCode.BadFormat, `image gc: ${file} is missing or damaged: not collecting, so as not to remove what that pod uses`, {
    hint: 'remove that pod (tspod rm UUID), then run image gc again',
  });
}

/** `tspod image gc`: images unused for `graceMs` and unreferenced layers and blobs go; what pods use stays. */
export function imageGc(store: Store, graceMs: number): Promise<ImageGcReport> {
  return collect(store, graceMs, () => podGcRoots(new PodsDir(store.paths.podsDir)));
}
