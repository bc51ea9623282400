// Turns an image candidate (from any source) into a stored image. This is the one
// place bytes enter the store, and every byte is verified on the way: manifests
// and configs against their descriptors, compressed layers against their digest
// and size, uncompressed layers against the config's diff_ids. Layers are fetched
// and unpacked concurrently, and a layer already in the store is not fetched.
import { Transform, type Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode, isTspodError } from '../native/errors.js';
import { ArchiveKeeper } from './aci-archive.js';
import { digestToId, MAX_MANIFEST_BYTES, type BlobRef } from './digest.js';
import { decompress } from './layers/decompress.js';
import { unpackLayer, MissingLinkTargetError, type UnpackResult } from './layers/unpack.js';
import { UnpackThread, deserializeError, type UnpackJob } from './layers/unpack-thread.js';
import { chainIds, chainLayerId, sharedLayerId, type LayerResult } from './layers/store.js';
import { hashTree } from './layers/treehash.js';
import { makeWhitelistLayer } from './layers/whitelist.js';
import type { AppcImageManifest } from './manifest/appc.js';
import { ociConfigToAppc } from './manifest/convert.js';
import { layerCompression, parseImageConfig, parseManifestBytes, type ImageConfig } from './manifest/oci.js';
import { checkConfigPlatform } from './manifest/platform.js';
import { parseAciStream, validateAciManifest } from './sources/aci.js';
import type { AciCandidate, ImageCandidate, ImageRecord, OciCandidate } from './sources/source.js';
import type { Store } from './store.js';
import { silentProgress, type Progress } from './progress.js';
import { Verifier, verifyBytes } from './verify.js';
import { log } from '../native/log.js';

export interface ImportResult {
  id: string;
  /** False when the image was already in the store. */
  stored: boolean;
}

const LAYER_CONCURRENCY = 4;
const MAX_WARNINGS_LOGGED = 10;

export interface ImportOptions {
  /**
   * ACIs: called once the manifest is read and checked and the image ID is known,
   * before anything of the image is stored. Checks the image against what was
   * asked for (a dependency's name, labels and ID) and returns the image IDs of
   * its dependencies, in order, fetching those the store lacks
   * (store/dependencies.ts).
   */
  aciDependencies?: (manifest: AppcImageManifest, id: string) => Promise<string[]>;
}

export async function importCandidate(
  store: Store,
  candidate: ImageCandidate,
  progress: Progress = silentProgress,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  try {
    return candidate.kind === 'oci' ? await importOci(store, candidate, progress) : await importAci(store, candidate, progress, opts);
  } finally {
    await candidate.close?.();
  }
}

async function importOci(store: Store, c: OciCandidate, progress: Progress): Promise<ImportResult> {
  verifyBytes(c.manifest.bytes, { digest: c.manifest.ref.digest, size: c.manifest.ref.size, what: `manifest of ${c.source}` });
  if (c.index) verifyBytes(c.index.bytes, { digest: c.index.ref.digest, size: c.index.ref.size, what: `image index of ${c.source}` });
  const manifest = parseManifestBytes(c.manifest.bytes, c.manifest.ref.mediaType);
  const id = digestToId(c.manifest.ref.digest);
  const scratch = store.scratch();

  if (store.images.has(id)) {
    const existing = store.images.get(id);
    if (existing.record.layers.every((l) => store.layers.has(l))) {
      for (const name of c.names) store.images.setName(name, id, scratch, 'docker');
      return { id, stored: false };
    }
  }

  const configBytes = await readSmallBlob(c, manifest.config, `config of ${c.source}`);
  const config: ImageConfig = parseImageConfig(configBytes);
  checkConfigPlatform(config, c.source);
  // Converted (and its paths checked) before any layer is fetched: a refused
  // image leaves no layer or blob behind.
  const appc = ociConfigToAppc(config, { names: c.names, source: c.source, manifestDigest: c.manifest.ref.digest, configDigest: manifest.config.digest });
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new TspodError(
      ErrorCode.BadFormat,
      `${c.source}: the manifest lists ${manifest.layers.length} layers but the config has ${diffIds.length} diff_ids`,
    );
  }
  // Each layer is stored under its diff_id (shared by every image that has it),
  // or, when it has hardlinks into the layers below it, under its chain ID
  // (store/layers/store.ts): which one is known once it is in the store, or once
  // an attempt to unpack it on its own found a link it cannot resolve.
  const sharedIds = diffIds.map(sharedLayerId);
  const chainIdList = chainIds(diffIds);
  const chainKeyed = chainIdList.map((ch, i) => (i === 0 ? sharedIds[0] : chainLayerId(ch)));

  // All of the image's missing layers are added, or none: each is unpacked into
  // scratch (concurrently), and they are moved into the store only once every one
  // of them has been verified. The layer locks, held until the image record is
  // written, make a concurrent import of the same layers wait and then find them.
  const reservation = await store.layers.reserve([...sharedIds, ...chainKeyed]);
  try {
    /** The layer ID of each position, once known. */
    const layerIds: Array<string | undefined> = diffIds.map((_, i) => {
      if (store.layers.has(sharedIds[i])) return sharedIds[i];
      if (i > 0 && store.layers.has(chainKeyed[i])) return chainKeyed[i];
      return undefined;
    });
    // A diff_id already stored chain-keyed (for another position, or under another
    // image's chain) links into lower layers: no attempt to unpack it on its own.
    const linksDown = new Set<string>();
    for (const [i, id] of layerIds.entries()) if (id !== undefined && id !== sharedIds[i]) linksDown.add(sharedIds[i]);
    if (layerIds.some((id, i) => id === undefined && i > 0)) {
      for (const l of store.layers.list()) {
        if (!l.startsWith('chain-')) continue;
        try {
          linksDown.add(sharedLayerId(store.layers.info(l).diffId));
        } catch {
          /* incomplete or being removed: no hint */
        }
      }
    }
    /** Positions still to stage, by shared ID: the same layer twice in an image is downloaded once. */
    const wanted = new Map<string, number[]>();
    for (const [i, id] of layerIds.entries()) {
      if (id !== undefined) {
        progress.done(manifest.layers[i].digest, 'present');
        continue;
      }
      const list = wanted.get(sharedIds[i]);
      if (list) list.push(i);
      else wanted.set(sharedIds[i], [i]);
    }
    const staged = new Map<string, { work: string; result: LayerResult }>();
    const tasks: Array<() => Promise<void>> = [];
    // The first layer that fails stops the others' downloads: its error is the one reported.
    const cancel = new AbortController();
    let firstError: unknown;
    // Layers unpack concurrently, each into an empty directory, so a hardlink into
    // a lower layer finds nothing: such a layer is unpacked again once the others
    // are, at each position it has, with the layers below that position (nearest
    // first) as lowerRootfs, and stored chain-keyed.
    const deferred: number[] = [];
    for (const [shared, positions] of wanted) {
      if (linksDown.has(shared)) {
        deferred.push(...positions);
        continue;
      }
      const i = positions[0];
      // The lowest position decides: at position 0 a link cannot be resolved at all.
      const retryable = i > 0;
      tasks.push(async () => {
        if (cancel.signal.aborted) return;
        try {
          staged.set(shared, await stageOciLayer(store, c, manifest.layers[i], diffIds[i], progress, cancel.signal, { retryable }));
          for (const p of positions) layerIds[p] = shared;
        } catch (e) {
          if (retryable && e instanceof MissingLinkTargetError && !cancel.signal.aborted) {
            log().debug(`layer ${manifest.layers[i].digest} links into a lower layer: unpacking it again after the others`);
            deferred.push(...positions);
            return;
          }
          if (firstError === undefined && !cancel.signal.aborted) firstError = e;
          cancel.abort();
          throw e;
        }
      });
    }
    try {
      await runLimited(tasks, LAYER_CONCURRENCY);
      const rootfsOf = (id: string) => {
        const s = staged.get(id);
        return s ? path.join(s.work, 'rootfs') : store.layers.rootfs(id);
      };
      // Lowest first: every position below a deferred one has its layer by then.
      for (const i of deferred.sort((a, b) => a - b)) {
        const lowerRootfs = layerIds.slice(0, i).reverse().map((id) => rootfsOf(id!));
        const staging = await stageOciLayer(store, c, manifest.layers[i], diffIds[i], progress, cancel.signal, { lowerRootfs });
        staging.result.chainId = chainIdList[i];
        staged.set(chainKeyed[i], staging);
        layerIds[i] = chainKeyed[i];
      }
    } catch (e) {
      for (const { work } of staged.values()) fs.rmSync(work, { recursive: true, force: true });
      throw firstError ?? e;
    }
    for (const [layerId, { work, result }] of staged) reservation.commit(layerId, work, result);
    const layers = layerIds as string[];

    store.blobs.putBytes(c.manifest.bytes, { digest: c.manifest.ref.digest, size: c.manifest.ref.size, what: 'manifest' }, scratch);
    store.blobs.putBytes(configBytes, { digest: manifest.config.digest, size: manifest.config.size, what: 'config' }, scratch);
    if (c.index) store.blobs.putBytes(c.index.bytes, { digest: c.index.ref.digest, size: c.index.ref.size, what: 'index' }, scratch);

    const record: ImageRecord = {
      id,
      kind: 'oci',
      layers,
      size: [...new Set(layers)].reduce((sum, l) => sum + store.layers.info(l).size, 0),
      importTime: Date.now(),
      manifestDigest: c.manifest.ref.digest,
      configDigest: manifest.config.digest,
      indexDigest: c.index?.ref.digest,
      sources: [c.source],
    };
    await store.images.put(record, appc, c.names, scratch, 'docker');
    return { id, stored: true };
  } finally {
    reservation.release();
  }
}

/** Downloads, verifies and unpacks one layer into a new scratch directory (`work/rootfs`). */
async function stageOciLayer(
  store: Store,
  c: OciCandidate,
  ref: BlobRef,
  diffId: string,
  progress: Progress,
  signal: AbortSignal,
  opts: { lowerRootfs?: string[]; retryable?: boolean } = {},
): Promise<{ work: string; result: LayerResult }> {
  const { lowerRootfs, retryable = false } = opts;
  const key = ref.digest;
  const label = ref.digest.slice(ref.digest.indexOf(':') + 1, ref.digest.indexOf(':') + 13);
  const compression = layerCompression(ref.mediaType);
  progress.start(key, label, ref.size);
  const work = store.scratch().path('layer');
  const rootfs = path.join(work, 'rootfs');
  try {
    fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
    const source = await c.openBlob(ref, signal);
    const stop = () => source.destroy(new TspodError(ErrorCode.System, `download of ${ref.digest} was cancelled: another layer failed`));
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    source.once('close', () => signal.removeEventListener('abort', stop));
    const counted = countingStream((n) => progress.update(key, n));
    const compressed = new Verifier({ digest: ref.digest, size: ref.size, what: `layer ${ref.digest} of ${c.source}` });
    const result = await unpackVerified(source, counted, compressed, {
      rootfs,
      what: `layer ${ref.digest}`,
      verifyWhat: `uncompressed layer ${ref.digest} (diff_id ${diffId}) of ${c.source}`,
      diffId,
      compression,
      lowerRootfs,
    });
    logWarnings(result.warnings);
    progress.done(key, 'stored');
    return { work, result: { diffId, treeHash: result.treeHash, size: result.size, entries: result.entries } };
  } catch (e) {
    if (!(retryable && e instanceof MissingLinkTargetError)) progress.done(key, 'failed');
    fs.rmSync(work, { recursive: true, force: true });
    throw e;
  }
}

/**
 * source → counter → compressed-digest check → UnpackThread's sink ⇢ (worker thread)
 * decompressor → diff_id check → unpacker. The download always runs to its end
 * through the compressed verifier, even when the unpacker gives up early on damaged
 * data, so that a digest mismatch (the real cause) is what gets reported.
 */
async function unpackVerified(
  source: Readable,
  counter: Transform,
  compressed: Verifier,
  job: UnpackJob,
): Promise<UnpackResult> {
  const thread = new UnpackThread(job);
  try {
    const feeding = pipeline(source, counter, compressed, thread.sink);
    // A download that fails (cut, stalled, too long) must also stop the worker's
    // decompressor, or its unpacker would wait for the rest of the stream forever.
    feeding.catch((e: unknown) => thread.abort(e));
    const outcome = await thread.outcome;
    const [fed] = await Promise.allSettled([feeding]);
    const unpackError = outcome.unpackError && deserializeError(outcome.unpackError);
    const unpackingError = outcome.unpackingError && deserializeError(outcome.unpackingError);
    const errors = [fed.status === 'rejected' ? (fed.reason as unknown) : undefined, unpackingError].filter((e) => e !== undefined);
    const mismatch = errors.find((e) => isTspodError(e) && e.code === ErrorCode.DigestMismatch);
    if (mismatch) throw mismatch;
    // A failed download is the cause of whatever the unpacker then said.
    if (fed.status === 'rejected') throw fed.reason;
    if (unpackError) throw unpackError;
    if (errors.length) throw errors.find(isTspodError) ?? errors[0];
    return outcome.result!;
  } finally {
    await thread.close();
  }
}

/** Logs an unpacker's warnings, one line each, at most MAX_WARNINGS_LOGGED. */
function logWarnings(warnings: string[]): void {
  for (const w of warnings.slice(0, MAX_WARNINGS_LOGGED)) log().warn(w);
  if (warnings.length > MAX_WARNINGS_LOGGED) log().warn(`… and ${warnings.length - MAX_WARNINGS_LOGGED} more warnings`);
}

function countingStream(report: (n: number) => void): Transform {
  let n = 0;
  let last = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      const now = Date.now();
      if (now - last > 100) {
        last = now;
        report(n);
      }
      cb(null, chunk);
    },
    flush(cb) {
      report(n);
      cb();
    },
  });
}

async function readSmallBlob(c: OciCandidate, ref: BlobRef, what: string): Promise<Buffer> {
  if (ref.size > MAX_MANIFEST_BYTES) {
    throw new TspodError(ErrorCode.BadFormat, `${what} is ${ref.size} bytes; refusing configs over ${MAX_MANIFEST_BYTES}`);
  }
  const stream = await c.openBlob(ref);
  const verifier = new Verifier({ digest: ref.digest, size: ref.size, what });
  const chunks: Buffer[] = [];
  await pipeline(stream, verifier, async function* (src: AsyncIterable<Buffer>) {
    for await (const chunk of src) chunks.push(chunk);
  });
  return Buffer.concat(chunks);
}

/**
 * The layer directories of `ids` (lowest first), a layer listed twice once at its
 * topmost position (as layerDirs in image-ops.ts); `own` maps a layer not yet in
 * the store to its scratch rootfs.
 */
function dirsOf(store: Store, ids: string[], own: Map<string, string>): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = ids.length - 1; i >= 0; i--) {
    if (seen.has(ids[i])) continue;
    seen.add(ids[i]);
    out.push(own.get(ids[i]) ?? store.layers.rootfs(ids[i]));
  }
  return out.reverse();
}

async function importAci(store: Store, c: AciCandidate, progress: Progress, opts: ImportOptions): Promise<ImportResult> {
  const scratch = store.scratch();
  const work = scratch.path('layer');
  const rootfs = path.join(work, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
  const key = c.source;
  progress.start(key, path.basename(c.source), c.size ?? -1);
  const raw = await c.open();
  const counted = countingStream((n) => progress.update(key, n));
  // The archive as fetched is kept for `image export` (store/aci-archive.ts).
  const keeper = new ArchiveKeeper(scratch.path('aci'));
  const whole = new Verifier({ what: `ACI ${c.source}` }, 'sha512');
  const feeding = pipeline(raw, counted, keeper);
  const decompressed = decompress(keeper, 'auto', `ACI ${c.source}`);
  const hashing = pipeline(decompressed, whole);
  const aci = parseAciStream(whole, c.source);
  let result: UnpackResult;
  try {
    const [r] = await Promise.all([unpackLayer(aci.rootfsTar, rootfs, { what: `ACI ${c.source}` }), feeding, hashing]);
    result = r;
    logWarnings(result.warnings);
  } catch (e) {
    progress.done(key, 'failed');
    raw.destroy();
    throw e;
  }
  const kept = await keeper.result;
  const manifest = validateAciManifest(await aci.manifest, c.source);
  const hex = whole.digest!.slice('sha512:'.length, 'sha512:'.length + 64);
  const id = `sha512-${hex}`;
  progress.done(key, 'stored');
  // Dependencies (store first, else from the same source) before anything of
  // this image is stored: a missing or wrong one leaves nothing of it behind.
  if (manifest.dependencies?.length && !opts.aciDependencies) {
    throw new TspodError(ErrorCode.Unsupported, `ACI ${c.source} has dependencies, which cannot be resolved here`);
  }
  const dependencies = opts.aciDependencies ? await opts.aciDependencies(manifest, id) : [];
  const layers = [...dependencies.flatMap((d) => store.images.get(d).record.layers), id];
  const own = new Map([[id, rootfs]]);
  // The pathWhitelist as a layer of whiteouts on top (store/layers/whitelist.ts),
  // keyed by the layers below it and the list.
  let whitelist: { id: string; work: string; result: LayerResult } | undefined;
  if (manifest.pathWhitelist?.length) {
    const keyHex = createHash('sha256').update(JSON.stringify({ layers, pathWhitelist: manifest.pathWhitelist })).digest('hex');
    const wlId = `pwl-sha256-${keyHex}`;
    if (!store.layers.has(wlId)) {
      const wlWork = scratch.path('layer');
      const wlRoot = path.join(wlWork, 'rootfs');
      fs.mkdirSync(wlRoot, { recursive: true, mode: 0o755 });
      const n = makeWhitelistLayer(dirsOf(store, layers, own), manifest.pathWhitelist, wlRoot);
      log().debug(`pathWhitelist of ${c.source}: ${n} whiteouts in layer ${wlId}`);
      const treeHash = await hashTree(wlRoot);
      whitelist = { id: wlId, work: wlWork, result: { diffId: `sha256:${keyHex}`, treeHash, size: 0, entries: n } };
    }
    layers.push(wlId);
  }
  const existing = store.images.has(id) ? store.images.get(id).record : undefined;
  // An image stored before tspod kept archives (or applied dependencies) gets both now.
  const keepArchive = !existing?.aciBlob;
  if (keepArchive) store.blobs.commitScratchFile(kept.file, kept.digest);
  await store.layers.adopt(id, work, { diffId: whole.digest!, treeHash: result.treeHash, size: result.size, entries: result.entries });
  if (whitelist) await store.layers.adopt(whitelist.id, whitelist.work, whitelist.result);
  // The ACI's own name is an appc name: it never answers a docker:// reference,
  // whatever registry name it claims (store/images.ts).
  const version = manifest.labels?.find((l) => l.name === 'version')?.value;
  const names = [version ? `${manifest.name}:${version}` : manifest.name];
  const record: ImageRecord = {
    id,
    kind: 'aci',
    layers,
    size: whole.bytes,
    importTime: Date.now(),
    sources: [c.source],
    ...(dependencies.length ? { dependencies } : {}),
    aciBlob: kept.digest,
  };
  if (existing && (keepArchive || !existing.sources.includes(c.source))) {
    // Every URL it came from answers --pull-policy=new (rkt keeps one remote per URL).
    await store.images.updateRecord(id, (r) => ({
      ...r,
      sources: r.sources.includes(c.source) ? r.sources : [...r.sources, c.source],
      ...(keepArchive ? { layers, aciBlob: kept.digest, ...(dependencies.length ? { dependencies } : {}) } : {}),
    }));
  }
  await store.images.put(record, manifest, names, scratch, 'appc');
  log().debug(`imported ACI ${c.source} as ${id}`);
  return { id, stored: !existing };
}

/** Runs tasks with at most `limit` at once; the first failure is thrown after all settle. */
async function runLimited(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++];
      try {
        await task();
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (errors.length) throw errors.find(isTspodError) ?? errors[0];
}
