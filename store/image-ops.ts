// Operations on one stored image: render or extract its rootfs, export it as an
// ACI, verify it against what was recorded at import, show its original manifests.
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import { writeKeptAci, verifyKeptAci } from './aci-archive.js';
import { exportAci, fileHandleSink, writeOutputFile } from './export-aci.js';
import { AC_IDENTIFIER, checkAciPlatform } from './sources/aci.js';
import type { StoredImage } from './images.js';
import { hashTree } from './layers/treehash.js';
import { chainIds, chainLayerId, sharedLayerId } from './layers/store.js';
import { parseImageConfig } from './manifest/oci.js';
import { renderLayers } from './layers/render.js';
import type { Store } from './store.js';
import { verifyBytes } from './verify.js';

/**
 * The image's layer rootfs directories, lowest first; fails clearly if one is
 * missing. This is the one place an image's layer list becomes directories
 * (overlay lowerdir, render, export, lookups in the image), and a layer listed
 * more than once appears once, at its topmost position: overlayfs refuses a
 * repeated lower directory, and the result is the same. (A lookup walks the
 * layers from the top and stops at the first that decides a name; where the
 * lower copy of a layer would be reached, the upper copy, with the same
 * entries, has already been passed without deciding, so the lower copy decides
 * nothing either: it has no entry there, or only a directory that merges
 * again, whose children the upper copy has already given. An opaque root
 * hides it in any case.)
 */
export function layerDirs(store: Store, img: StoredImage): string[] {
  const ids = img.record.layers;
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = ids.length - 1; i >= 0; i--) {
    const l = ids[i];
    if (seen.has(l)) continue;
    seen.add(l);
    if (!store.layers.has(l)) {
      throw new TspodError(ErrorCode.NotFound, `layer ${l} of image ${img.record.id} is missing from the store`, {
        hint: 'remove the image and fetch it again',
      });
    }
    out.push(store.layers.rootfs(l));
  }
  return out.reverse();
}

export interface ExtractOptions {
  rootfsOnly: boolean;
  overwrite: boolean;
  /**
   * `image render`: the rootfs as an app sees it (an ACI's dependencies and
   * pathWhitelist applied; refused, as rkt does, for an ACI whose os/arch labels
   * are missing or not this host's). `image extract` (false): an ACI's own files
   * only, as rkt extracts just that ACI; every layer for other images.
   */
  render: boolean;
}

/**
 * Writes the image's rootfs to `target`, with its manifest beside it unless
 * rootfsOnly. The result appears only when complete: it is built next to
 * `target` and renamed.
 */
export async function extractImage(store: Store, id: string, target: string, opts: ExtractOptions): Promise<void> {
  const img = store.images.get(id);
  if (opts.render && img.record.kind === 'aci') checkAciPlatform(img.manifest);
  const layers = !opts.render && img.record.kind === 'aci' ? [ownLayerDir(store, img)] : layerDirs(store, img);
  const dest = path.resolve(target);
  if (fs.existsSync(dest)) {
    if (!opts.overwrite) {
      throw new TspodError(ErrorCode.Conflict, `target directory ${JSON.stringify(target)} exists`, { remedy: 'allow-overwrite' });
    }
  }
  const work = `${dest}.tspod-tmp-${process.pid}`;
  fs.rmSync(work, { recursive: true, force: true });
  try {
    const rootfs = opts.rootfsOnly ? work : path.join(work, 'rootfs');
    fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
    await renderLayers(layers, rootfs);
    if (!opts.rootfsOnly) fs.writeFileSync(path.join(work, 'manifest'), JSON.stringify(img.manifest, null, 2));
    fs.rmSync(dest, { recursive: true, force: true });
    fs.renameSync(work, dest);
  } catch (e) {
    fs.rmSync(work, { recursive: true, force: true });
    throw e;
  }
  store.images.touch(id);
}

/** An ACI's own layer (its ID), without its dependencies' or its pathWhitelist's. */
function ownLayerDir(store: Store, img: StoredImage): string {
  const id = img.record.id;
  if (!store.layers.has(id)) {
    throw new TspodError(ErrorCode.NotFound, `layer ${id} of image ${id} is missing from the store`, { hint: 'remove the image and fetch it again' });
  }
  return store.layers.rootfs(id);
}

/**
 * Writes the image as an uncompressed ACI that `tspod fetch` takes back. An image
 * that came as an ACI is written back byte for byte, so that the file's sha512
 * is the image ID (rkt's contract; store/aci-archive.ts); others (and ACIs
 * fetched by a tspod that did not keep the archive) are rendered and written
 * as a new ACI (store/export-aci.ts).
 */
export async function exportImage(store: Store, id: string, out: string, overwrite: boolean): Promise<void> {
  if (!out.endsWith('.aci')) {
    throw new TspodError(ErrorCode.BadInput, `output file ${JSON.stringify(out)} must end in .aci`);
  }
  if (fs.existsSync(out) && !overwrite) {
    throw new TspodError(ErrorCode.Conflict, `output ACI file ${JSON.stringify(out)} exists`, { remedy: 'allow-overwrite' });
  }
  const img = store.images.get(id);
  if (img.record.kind === 'aci' && img.record.aciBlob) {
    const blob = store.blobs.path(img.record.aciBlob);
    await writeOutputFile(out, overwrite, async (fh) => {
      await writeKeptAci(blob, id, fileHandleSink(fh));
    });
    return;
  }
  const rootfs = store.scratch().path('export');
  fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
  try {
    await renderLayers(layerDirs(store, img), rootfs);
    await exportAci({ manifest: exportableManifest(img.manifest), rootfsDir: rootfs, out, overwrite });
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
}

/**
 * The manifest as an ACI may carry it. A converted Docker image keeps its registry
 * name (`127.0.0.1:5000/busybox`), which is not an AC Identifier (no ':'): the ACI
 * gets appc's sanitised form (`127.0.0.1-5000/busybox`), so that tspod, rkt and
 * actool take the file back.
 */
export function exportableManifest(m: StoredImage['manifest']): StoredImage['manifest'] {
  if (AC_IDENTIFIER.test(m.name)) return m;
  const name = m.name
    .toLowerCase()
    .split('/')
    .map((part) =>
      part
        .replace(/[^a-z0-9._~-]/g, '-')
        .replace(/([-._~])[-._~]+/g, '$1')
        .replace(/^[-._~]+|[-._~]+$/g, ''),
    )
    .filter(Boolean)
    .join('/');
  return { ...m, name: name || 'image' };
}

/**
 * Re-hashes every unpacked layer, stored manifest and kept ACI archive (whose
 * uncompressed sha512 must still be the image ID), and checks that each layer
 * is the one the image's config names at its position (its diff_id, and for a
 * layer made over the layers below it, this image's chain of them); returns
 * what no longer matches.
 */
export async function verifyImage(store: Store, id: string): Promise<string[]> {
  const img = store.images.get(id);
  const problems: string[] = [];
  for (const layer of new Set(img.record.layers)) {
    if (!store.layers.has(layer)) {
      problems.push(`layer ${layer} is missing`);
      continue;
    }
    const info = store.layers.info(layer);
    const actual = await hashTree(store.layers.rootfs(layer));
    if (actual !== info.treeHash) problems.push(`layer ${layer} was modified after it was unpacked (tree hash ${actual}, recorded ${info.treeHash})`);
  }
  let configOk = true;
  for (const [what, digest] of [
    ['manifest', img.record.manifestDigest],
    ['config', img.record.configDigest],
    ['index', img.record.indexDigest],
  ] as const) {
    if (!digest) continue;
    try {
      verifyBytes(store.blobs.read(digest), { digest, what });
    } catch (e) {
      if (what === 'config') configOk = false;
      problems.push(e instanceof TspodError ? e.message : `${what} ${digest}: ${String(e)}`);
    }
  }
  if (img.record.kind === 'oci' && img.record.configDigest && configOk) problems.push(...checkLayerKeys(store, img));
  if (img.record.kind === 'aci' && img.record.aciBlob) {
    problems.push(...(await verifyKeptAci(store.blobs.path(img.record.aciBlob), img.record.aciBlob, id)));
  }
  return problems;
}

/** Each layer of an OCI image against the config's diff_ids and their chain IDs. */
function checkLayerKeys(store: Store, img: StoredImage): string[] {
  let diffIds: string[];
  try {
    diffIds = parseImageConfig(store.blobs.read(img.record.configDigest!)).rootfs.diff_ids;
  } catch (e) {
    return [e instanceof TspodError ? e.message : `config ${img.record.configDigest}: ${String(e)}`];
  }
  const layers = img.record.layers;
  if (diffIds.length !== layers.length) return [`the image lists ${layers.length} layers but its config has ${diffIds.length} diff_ids`];
  const chains = chainIds(diffIds);
  const problems: string[] = [];
  layers.forEach((layer, i) => {
    if (!store.layers.has(layer)) return;
    const info = store.layers.info(layer);
    if (info.diffId !== diffIds[i]) {
      problems.push(`layer ${layer} at position ${i} has diff_id ${info.diffId}, the image's config says ${diffIds[i]}`);
    } else if (info.chainId !== undefined ? layer !== chainLayerId(chains[i]) || info.chainId !== chains[i] : layer !== sharedLayerId(diffIds[i])) {
      problems.push(`layer ${layer} at position ${i} was made over other layers (chain ID ${info.chainId ?? 'none'}) than this image's (chain ID ${chains[i]})`);
    }
  });
  return problems;
}

export function originalManifest(store: Store, img: StoredImage, which: 'manifest' | 'config' | 'index'): Buffer {
  const digest = which === 'manifest' ? img.record.manifestDigest : which === 'config' ? img.record.configDigest : img.record.indexDigest;
  if (!digest) {
    if (img.record.kind === 'aci') {
      throw new TspodError(ErrorCode.NotFound, `image ${img.record.id} is an appc image, which has no original ${which}`, { remedy: 'show-own-manifest' });
    }
    throw new TspodError(ErrorCode.NotFound, `image ${img.record.id} has no original ${which} (it was not fetched from an image index)`);
  }
  return store.blobs.read(digest);
}
