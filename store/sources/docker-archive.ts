// `docker-archive:FILE[:NAME[:TAG] | :@N]`: what `docker save` and
// `skopeo copy … docker-archive:FILE` write. The archive holds manifest.json,
//   [{"Config": "<file>", "RepoTags": ["busybox:latest"], "Layers": ["<dir>/layer.tar", …]}]
// with each layer a tar file (uncompressed in practice; gzip and zstd accepted) and
// the config a Docker container config. Older docker versions store repeated
// layers as symlinks to the first copy; those are followed inside the archive.
//
// There is no registry manifest in such an archive, so one is made: a Docker
// schema 2 manifest whose descriptors carry the layer files' real digests and
// sizes as stored (an OCI manifest if a layer is zstd, which schema 2 cannot
// name). The image ID is the sha256 of those bytes.
//
// The archive is indexed in place (oci-archive.ts's TarIndex) and layers are
// read by offset; nothing is extracted unless the archive itself is compressed.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { TspodError, ErrorCode } from '../../native/errors.js';
import { digestProblem, MAX_MANIFEST_BYTES, sha256, type BlobRef } from '../digest.js';
import { sniffCompression, SNIFF_BYTES, type Compression } from '../layers/decompress.js';
import { MediaType } from '../manifest/oci.js';
import { TarIndex, type ArchiveOptions, type TarMember } from './oci-archive.js';
import { normalizeDockerName } from './oci-layout.js';
import type { OciCandidate } from './source.js';

/** Docker's media type for an uncompressed schema 2 layer. */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';


interface ArchiveImage {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

export async function openDockerArchive(file: string, name: string | undefined, opts: ArchiveOptions = {}): Promise<OciCandidate> {
  const abs = path.resolve(file);
  const describe = `docker-archive:${abs}`;
  const archive = await TarIndex.open(abs, { what: describe, scratchDir: opts.scratchDir, userPath: file });
  try {
    const images = await readArchiveManifest(archive, describe, file);
    const [image, position] = pickImage(images, name, describe);
    const what = `${describe}${name ? `:${name}` : images.length > 1 ? `:@${position}` : ''}`;

    const configMember = member(archive, image.Config, 'config', what);
    if (configMember.size > MAX_MANIFEST_BYTES) {
      throw new TspodError(ErrorCode.BadFormat, `${what}: its config is ${configMember.size} bytes; refusing configs over ${MAX_MANIFEST_BYTES}`);
    }
    const configBytes = await archive.readRange(configMember.offset, configMember.size);
    const diffIds = diffIdsOf(configBytes);

    const blobs = new Map<string, TarMember>();
    const configRef: BlobRef = { mediaType: MediaType.dockerConfig, digest: sha256(configBytes), size: configBytes.length };
    blobs.set(configRef.digest, configMember);

    const layers: Array<BlobRef & { compression: Compression }> = [];
    for (const [i, layerPath] of image.Layers.entries()) {
      const m = member(archive, layerPath, `layer ${i}`, what);
      const head = m.size ? await archive.readRange(m.offset, Math.min(SNIFF_BYTES, m.size)) : Buffer.alloc(0);
      const compression = sniffCompression(head);
      let mediaType: string;
      switch (compression) {
        case 'none':
          mediaType = DOCKER_LAYER_TAR;
          break;
        case 'gzip':
          mediaType = MediaType.dockerLayerGzip;
          break;
        case 'zstd':
          mediaType = MediaType.ociLayerZstd;
          break;
        default:
          throw new TspodError(ErrorCode.Unsupported, `${what}: layer ${layerPath} is ${compression}-compressed`, {
            hint: 'tspod takes uncompressed, gzip and zstd layers',
          });
      }
      // An uncompressed layer's digest is its diff_id: take it from the config
      // instead of reading the layer twice (the importer checks it as the layer
      // streams). Compressed layers are hashed here.
      const digest =
        compression === 'none' && diffIds?.length === image.Layers.length && diffIds[i].startsWith('sha256:') && !digestProblem(diffIds[i])
          ? diffIds[i]
          : await hashMember(archive, m);
      layers.push({ mediaType, digest, size: m.size, compression });
      blobs.set(digest, m);
    }

    const oci = layers.some((l) => l.compression === 'zstd');
    const manifestObject = {
      schemaVersion: 2,
      mediaType: oci ? MediaType.ociManifest : MediaType.dockerManifest,
      config: { ...configRef, mediaType: oci ? MediaType.ociConfig : MediaType.dockerConfig },
      layers: layers.map((l) => ({
        mediaType: oci ? ociLayerType(l.compression) : l.mediaType,
        size: l.size,
        digest: l.digest,
      })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifestObject, null, 3));
    const names = [...new Set(image.RepoTags.map((t) => normalizeDockerName(t)).filter((t): t is string => !!t))];

    return {
      kind: 'oci',
      source: name === undefined ? describe : `${describe}:${name}`,
      names,
      manifest: {
        ref: { mediaType: manifestObject.mediaType, digest: sha256(manifestBytes), size: manifestBytes.length },
        bytes: manifestBytes,
      },
      async openBlob(ref: BlobRef): Promise<Readable> {
        const m = blobs.get(ref.digest);
        if (!m) throw new TspodError(ErrorCode.NotFound, `blob ${ref.digest} is not in ${describe}`);
        return archive.openMember(m);
      },
      close: () => archive.close(),
    };
  } catch (e) {
    await archive.close();
    throw e;
  }
}

function ociLayerType(c: Compression): string {
  return c === 'gzip' ? MediaType.ociLayerGzip : c === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
}

async function readArchiveManifest(archive: TarIndex, describe: string, userPath: string): Promise<ArchiveImage[]> {
  const bytes = await archive.readFile('manifest.json', MAX_MANIFEST_BYTES);
  if (!bytes) {
    if (archive.get('oci-layout')) {
      throw new TspodError(ErrorCode.BadFormat, `${describe} is not a docker archive: it has no manifest.json`, {
        hint: `it holds an OCI image layout; use oci-archive:${userPath}`,
      });
    }
    if (archive.get('repositories')) {
      throw new TspodError(ErrorCode.Unsupported, `${describe} is a legacy docker archive without manifest.json`, {
        hint: 'save it again with docker 1.10 or later',
      });
    }
    throw new TspodError(ErrorCode.BadFormat, `${describe} is not a docker archive: it has no manifest.json`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new TspodError(ErrorCode.BadFormat, `manifest.json of ${describe} is not valid JSON (${(e as Error).message})`);
  }
  const bad = (detail: string) => new TspodError(ErrorCode.BadFormat, `invalid manifest.json in ${describe}: ${detail}`);
  if (!Array.isArray(raw)) throw bad('it is not a list');
  if (raw.length === 0) throw new TspodError(ErrorCode.NotFound, `${describe} holds no images`);
  return raw.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) throw bad(`entry ${i} is not an object`);
    const o = item as Record<string, unknown>;
    if (typeof o.Config !== 'string' || o.Config === '') throw bad(`entry ${i} has no Config`);
    if (!Array.isArray(o.Layers) || o.Layers.some((l) => typeof l !== 'string')) throw bad(`entry ${i}: Layers must be a list of file names`);
    if (o.Layers.length === 0) throw bad(`entry ${i} has no layers`);
    const tags = o.RepoTags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw bad(`entry ${i}: RepoTags must be a list of names`);
    return { Config: o.Config, RepoTags: tags as string[], Layers: o.Layers as string[] };
  });
}

function pickImage(images: ArchiveImage[], name: string | undefined, describe: string): [ArchiveImage, number] {
  const listing = () => {
    const tags = images.flatMap((img) => img.RepoTags);
    return tags.length ? `it has ${tags.join(', ')}; or pick by position, :@0 to :@${images.length - 1}` : `its images are untagged; pick by position, :@0 to :@${images.length - 1}`;
  };
  if (name === undefined) {
    if (images.length === 1) return [images[0], 0];
    throw new TspodError(ErrorCode.Ambiguous, `${describe} holds ${images.length} images; say which one with ${describe}:NAME:TAG`, {
      hint: listing(),
    });
  }
  if (/^@\d+$/.test(name)) {
    const n = Number(name.slice(1));
    if (n >= images.length) throw new TspodError(ErrorCode.NotFound, `${describe} has no image ${name}`, { hint: `it holds ${images.length} (@0 to @${images.length - 1})` });
    return [images[n], n];
  }
  const wanted = normalizeDockerName(name);
  if (!wanted) throw new TspodError(ErrorCode.BadInput, `invalid image name ${JSON.stringify(name)} for ${describe}`, { hint: 'write NAME[:TAG], or @N for the N-th image' });
  const i = images.findIndex((img) => img.RepoTags.some((t) => normalizeDockerName(t) === wanted));
  if (i < 0) throw new TspodError(ErrorCode.NotFound, `no image named ${JSON.stringify(name)} in ${describe}`, { hint: listing() });
  return [images[i], i];
}

function member(archive: TarIndex, p: string, what: string, describe: string): TarMember {
  const m = archive.get(p);
  if (!m) throw new TspodError(ErrorCode.BadFormat, `${describe}: its ${what} ${JSON.stringify(p)} is missing from the archive`);
  if (m.type !== 'file') throw new TspodError(ErrorCode.BadFormat, `${describe}: its ${what} ${JSON.stringify(p)} is not a regular file`);
  return m;
}

function diffIdsOf(configBytes: Buffer): string[] | undefined {
  try {
    const c = JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: unknown } };
    const ids = c.rootfs?.diff_ids;
    return Array.isArray(ids) && ids.every((d) => typeof d === 'string') ? (ids as string[]) : undefined;
  } catch {
    return undefined; // the importer reports a bad config properly
  }
}

async function hashMember(archive: TarIndex, m: TarMember): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of archive.openMember(m)) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}
