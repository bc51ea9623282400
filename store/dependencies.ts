// appc image dependencies (docs/architecture.md, "Images"): an ACI's manifest may list
// `dependencies: [{imageName, imageID?, labels?, size?}]`, images whose files lie
// below its own. They are resolved when the ACI is fetched, before anything of it
// is stored (store/importer.ts calls the hook made here):
//
//  - with an imageID: the image with that ID in the store (rkt's ResolveKey);
//    without: the most recent ACI in the store with that name and every requested
//    label (rkt's GetACI). A label matches if it has the same value, or was not
//    requested; os and arch are requested as this host's unless given;
//  - else fetched from the same source as the image that needs it (tspod does no
//    appc discovery): an ACI file's directory, or an http(s) URL's base, with
//    appc's file name `<last element of name>-<version>-<os>-<arch>.aci`, then
//    without the version. What is fetched must have the requested name and
//    labels, and the imageID when one was given (compared on the 64 hex digits
//    rkt keeps);
//  - dependencies of dependencies the same way, depth first, in listed order;
//    a cycle (an image that needs itself, by any path) or more than MAX_DEPTH
//    levels is refused.
//
// The image's layers are then its dependencies' layers, in order, below its own.
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import { log } from '../native/log.js';
import type { PullPolicy } from './fetch.js';
import { importCandidate } from './importer.js';
import type { InsecureOptions } from './insecure.js';
import type { AppcDependency, AppcImageManifest } from './manifest/appc.js';
import type { Progress } from './progress.js';
import { hostAppcArches, openAci } from './sources/aci.js';
import type { AciCandidate } from './sources/source.js';
import type { Store } from './store.js';

/** How deep dependencies may nest (an image, its dependency, theirs, …). */
export const MAX_DEPTH = 16;

export interface DependencyOptions {
  pullPolicy: PullPolicy;
  insecure: InsecureOptions;
  progress: Progress;
}

/** One image on the way from the image fetched to the dependency being resolved. */
interface Link {
  id: string;
  name: string;
}

/** What a dependency fetched from the source must be. */
interface Wanted {
  dep: AppcDependency;
  labels: Map<string, string>;
  /** `dependency "x" of image "y"`: starts every message about it. */
  say: string;
}

/**
 * The importer's `aciDependencies` hook for the ACI fetched from `source` (a file
 * path or an http(s) URL). `chain` are the images that need it; `wanted`, when
 * it is itself a dependency, what it must be.
 */
export function dependencyHook(
  store: Store,
  source: string,
  opts: DependencyOptions,
  chain: Link[] = [],
  wanted?: Wanted,
): (m: AppcImageManifest, id: string) => Promise<string[]> {
  return async (m, id) => {
    if (wanted) checkWanted(m, id, wanted, source);
    const here = [...chain, { id, name: m.name }];
    if (chain.some((l) => l.id === id)) {
      throw new TspodError(ErrorCode.BadInput, `${wanted?.say ?? `image ${JSON.stringify(m.name)}`}: dependency cycle: ${here.map((l) => l.name).join(' → ')}`);
    }
    if (here.length > MAX_DEPTH) {
      throw new TspodError(ErrorCode.BadInput, `image ${JSON.stringify(here[0].name)}: dependencies nest more than ${MAX_DEPTH} levels deep (${here.map((l) => l.name).join(' → ')})`);
    }
    const out: string[] = [];
    for (const dep of m.dependencies ?? []) out.push(await resolveOne(store, dep, source, opts, here));
    return out;
  };
}

/** The labels a dependency asks for, with this host's os and arch unless it names them. */
export function requestedLabels(dep: AppcDependency): Map<string, string> {
  const labels = new Map((dep.labels ?? []).map((l) => [l.name, l.value] as const));
  if (!labels.has('os')) labels.set('os', 'linux');
  if (!labels.has('arch')) labels.set('arch', hostAppcArches()[0]);
  return labels;
}

/** appc's file names for a dependency: with the version (if one is asked for), then without. */
export function dependencyFileNames(dep: AppcDependency, labels: Map<string, string>): string[] {
  const last = dep.imageName.slice(dep.imageName.lastIndexOf('/') + 1);
  const tail = `${labels.get('os')}-${labels.get('arch')}.aci`;
  const version = labels.get('version');
  return version ? [`${last}-${version}-${tail}`, `${last}-${tail}`] : [`${last}-${tail}`];
}

async function resolveOne(store: Store, dep: AppcDependency, source: string, opts: DependencyOptions, chain: Link[]): Promise<string> {
  const labels = requestedLabels(dep);
  const say = `dependency ${JSON.stringify(dep.imageName)} of image ${JSON.stringify(chain[chain.length - 1].name)}`;
  const stored = dep.imageID ? storedById(store, dep.imageID, say) : store.images.findAppc(dep.imageName, labels)[0];
  if (stored) {
    checkNoCycle(store, stored, chain, say);
    log().debug(`using image from local store for image name ${dep.imageName}${dep.imageID ? ` (${dep.imageID})` : ''}`);
    store.images.touch(stored);
    return stored;
  }
  if (opts.pullPolicy === 'never') {
    throw new TspodError(ErrorCode.NotFound, `${say} is not in the store and the pull policy is never`, { hint: 'fetch it first', remedy: 'allow-pull' });
  }
  const names = dependencyFileNames(dep, labels);
  for (const name of names) {
    const candidate = await openBeside(source, name, opts.insecure);
    if (!candidate) continue;
    log().debug(`fetching ${say} from ${candidate.source}`);
    const r = await importCandidate(store, candidate, opts.progress, {
      aciDependencies: dependencyHook(store, candidate.source, opts, chain, { dep, labels, say }),
    });
    store.images.touch(r.id);
    return r.id;
  }
  const where = isUrl(source) ? `at ${new URL('.', source).toString()}` : `in ${path.dirname(source)}`;
  throw new TspodError(ErrorCode.NotFound, `${say} is not in the store, and there is no ${names.join(' or ')} ${where}`, {
    hint: 'fetch it first, or put its ACI there (tspod does no appc discovery)',
  });
}

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** The image whose ID starts with the dependency's imageID (64 hex digits at most: rkt's key). */
function storedById(store: Store, imageID: string, say: string): string | undefined {
  const prefix = `sha512-${imageID.slice('sha512-'.length, 'sha512-'.length + 64)}`;
  const hits = store.images.ids().filter((id) => id.startsWith(prefix));
  if (hits.length > 1) throw new TspodError(ErrorCode.Ambiguous, `${say}: imageID ${imageID} matches ${hits.length} images in the store`);
  return hits[0];
}

/** An ACI next to `source` by file name, or undefined when there is none. */
async function openBeside(source: string, name: string, insecure: InsecureOptions): Promise<AciCandidate | undefined> {
  if (isUrl(source)) {
    try {
      return await openAci(new URL(name, source).toString(), { insecure });
    } catch (e) {
      if (e instanceof TspodError && e.code === ErrorCode.NotFound) return undefined;
      throw e;
    }
  }
  const file = path.join(path.dirname(source), name);
  try {
    if (!fs.statSync(file).isFile()) return undefined;
  } catch {
    return undefined;
  }
  return openAci(file);
}

/** What was fetched for a dependency must be what it asks for (appc discovery's checks). */
function checkWanted(m: AppcImageManifest, id: string, w: Wanted, source: string): void {
  if (m.name !== w.dep.imageName) {
    throw new TspodError(ErrorCode.BadInput, `${w.say}: ${source} is image ${JSON.stringify(m.name)}`);
  }
  const has = new Map((m.labels ?? []).map((l) => [l.name, l.value] as const));
  for (const [name, value] of w.labels) {
    const got = has.get(name);
    if (got === undefined) throw new TspodError(ErrorCode.BadInput, `${w.say}: requested label ${JSON.stringify(name)} not provided by the image manifest of ${source}`);
    if (got !== value) {
      throw new TspodError(
        ErrorCode.BadInput,
        `${w.say}: requested value for label ${JSON.stringify(name)}: ${JSON.stringify(value)} differs from fetched aci label value: ${JSON.stringify(got)} (${source})`,
      );
    }
  }
  if (w.dep.imageID) {
    const want = w.dep.imageID.slice('sha512-'.length, 'sha512-'.length + 64);
    if (!id.slice('sha512-'.length).startsWith(want)) {
      throw new TspodError(ErrorCode.DigestMismatch, `${w.say}: ${source} is image ${id}, not the required ${w.dep.imageID}`);
    }
  }
}

/** A dependency found in the store must not need, by any path, an image on the way to it. */
function checkNoCycle(store: Store, start: string, chain: Link[], say: string): void {
  const onPath = new Set(chain.map((l) => l.id));
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length) {
    const id = todo.pop()!;
    if (onPath.has(id)) {
      const names = [...chain.map((l) => l.name), store.images.has(id) ? store.images.get(id).manifest.name : id];
      throw new TspodError(ErrorCode.BadInput, `${say}: dependency cycle: ${names.join(' → ')}`);
    }
    if (seen.has(id) || !store.images.has(id)) continue;
    seen.add(id);
    todo.push(...(store.images.get(id).record.dependencies ?? []));
  }
}
