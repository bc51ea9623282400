// `fetch`: from an image argument to an image ID in the store, following rkt's
// pull policies (docs/architecture.md, "Images"):
//   new    — use the stored image if there is one, else fetch (run and prepare);
//   update — always ask the source; layers already stored are not fetched again (fetch);
//   never  — the store only.
// Local files (ACIs, OCI layouts and archives) are always read again.
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import { log } from '../native/log.js';
import { dependencyHook } from './dependencies.js';
import { importCandidate } from './importer.js';
import type { InsecureOptions } from './insecure.js';
import { silentProgress, type Progress } from './progress.js';
import { openAci } from './sources/aci.js';
import { classifyImageArg } from './sources/classify.js';
import { openDockerArchive } from './sources/docker-archive.js';
import { openOciArchive } from './sources/oci-archive.js';
import { openOciLayout } from './sources/oci-layout.js';
import { parseDockerReference } from './sources/reference.js';
import { resolveRegistryImage } from './sources/registry.js';
import type { ImageCandidate } from './sources/source.js';
import type { Store } from './store.js';

export type PullPolicy = 'new' | 'update' | 'never';

export interface FetchOptions {
  pullPolicy: PullPolicy;
  insecure: InsecureOptions;
  progress?: Progress;
}

export interface FetchResult {
  id: string;
  /** True when nothing new was stored (the image came from the store, or was already there). */
  fromStore: boolean;
}

export async function fetchImage(store: Store, arg: string, opts: FetchOptions): Promise<FetchResult> {
  const what = classifyImageArg(arg);
  const progress = opts.progress ?? silentProgress;
  switch (what.kind) {
    case 'id':
    case 'name': {
      const id = store.images.resolve(what.kind === 'id' ? what.id : what.name);
      store.images.touch(id);
      return { id, fromStore: true };
    }
    case 'docker': {
      const ref = parseDockerReference(what.reference);
      const stored = storeFirst(store, opts.pullPolicy, () => store.images.lookupName(ref.name), {
        found: `using image from local store for image name ${ref.name}`,
        missing: `image ${JSON.stringify(ref.name)} is not in the store and the pull policy is never`,
      });
      if (stored) return stored;
      log().debug(`remote fetching from ${what.reference}`);
      const candidate = await resolveRegistryImage(what.reference, { insecure: opts.insecure });
      return finish(store, candidate, progress);
    }
    case 'aci-url': {
      const stored = storeFirst(store, opts.pullPolicy, () => store.images.all().find((img) => img.record.sources.includes(what.url))?.record.id, {
        found: `using image from local store for url ${what.url}`,
        missing: `image from ${what.url} is not in the store and the pull policy is never`,
      });
      if (stored) return stored;
      return finish(store, await openAci(what.url, { insecure: opts.insecure }), progress, opts);
    }
    case 'aci-file': {
      // rkt's message, said once the file is in: a failure gets its one line alone.
      const r = await finish(store, await openAci(what.path, { insecure: opts.insecure }), progress, opts);
      log().info(`using image from file ${path.resolve(what.path)}`);
      return r;
    }
    case 'oci':
      return finish(store, await openOciLayout(what.path, what.tag), progress);
    case 'oci-archive':
      return finish(store, await openOciArchive(what.path, what.tag, { scratchDir: store.scratch().path('oci-archive') }), progress);
    case 'docker-archive':
      return finish(store, await openDockerArchive(what.path, what.name, { scratchDir: store.scratch().path('docker-archive') }), progress);
  }
}

/**
 * The `new` and `never` policies look in the store first: the stored image if
 * `lookup` finds one, an error under `never` if not, undefined to go remote.
 */
function storeFirst(
  store: Store,
  policy: PullPolicy,
  lookup: () => string | undefined,
  say: { found: string; missing: string },
): FetchResult | undefined {
  if (policy === 'update') return undefined;
  const id = lookup();
  if (id) {
    log().info(say.found);
    store.images.touch(id);
    return { id, fromStore: true };
  }
  if (policy === 'never') throw new TspodError(ErrorCode.NotFound, say.missing, { hint: 'fetch it first', remedy: 'allow-pull' });
  return undefined;
}

async function finish(store: Store, candidate: ImageCandidate, progress: Progress, opts?: FetchOptions): Promise<FetchResult> {
  // An ACI's dependencies: from the store, else from beside it (store/dependencies.ts).
  const aciDependencies =
    candidate.kind === 'aci' && opts ? dependencyHook(store, candidate.source, { pullPolicy: opts.pullPolicy, insecure: opts.insecure, progress }) : undefined;
  const r = await importCandidate(store, candidate, progress, { aciDependencies });
  store.images.touch(r.id);
  return { id: r.id, fromStore: !r.stored };
}
