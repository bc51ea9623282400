// What every image source hands to the store's importer. A source only locates
// bytes; the importer (store/importer.ts) verifies every digest and size while the
// bytes stream, so no source can get unverified content into the store.
import type { Readable } from 'node:stream';
import type { AppcImageManifest } from '../manifest/appc.js';

import type { BlobRef } from '../digest.js';

/** An OCI or Docker schema 2 image, from a registry, a layout, or an archive. */
export interface OciCandidate {
  kind: 'oci';
  /** Where it came from, for messages: `docker://host/repo:tag`, `oci:/dir:tag`. */
  source: string;
  /** Names to record for the image (`host/repo:tag`). */
  names: string[];
  /** The platform-specific image manifest, as served. */
  manifest: { ref: BlobRef; bytes: Buffer };
  /** The index or manifest list it was chosen from, when there was one (kept beside the image). */
  index?: { ref: BlobRef; bytes: Buffer };
  /** Opens a blob (config or layer) as stored at the source: compressed bytes for layers. */
  openBlob(ref: BlobRef, signal?: AbortSignal): Promise<Readable>;
  /** Called when the import ends, successfully or not (close files, free temp space). */
  close?(): Promise<void>;
}

/** An appc image (ACI). The importer hashes the uncompressed tar (sha512) for the ID. */
export interface AciCandidate {
  kind: 'aci';
  source: string;
  /** Opens the ACI (any of plain, gzip, bzip2, xz; the importer detects which). */
  open(): Promise<Readable>;
  /** Total size for progress, if known. */
  size?: number;
  close?(): Promise<void>;
}

export type ImageCandidate = OciCandidate | AciCandidate;

/** What the store keeps for each image (cas/images/<id>/record.json). */
export interface ImageRecord {
  /** `sha256-<hex>` (OCI manifest digest) or `sha512-<64 hex>` (appc). */
  id: string;
  kind: 'oci' | 'aci';
  /** Layer IDs, lowest first: the image's rootfs is these directories stacked. */
  layers: string[];
  /** Bytes of the image's own content: uncompressed layer sizes (ACI: the tar size). */
  size: number;
  /** ms since the epoch. */
  importTime: number;
  /** For OCI: digests of the original manifest, config, and index (blobs kept in the store). */
  manifestDigest?: string;
  configDigest?: string;
  indexDigest?: string;
  /** The sources it was fetched from. */
  sources: string[];
  /**
   * ACIs: the image IDs of its appc dependencies, in the manifest's order, as
   * resolved at fetch (store/dependencies.ts). `layers` holds theirs, in that
   * order, below the image's own layer (and its pathWhitelist layer on top).
   */
  dependencies?: string[];
  /** ACIs: the archive as fetched (store/aci-archive.ts), for a byte-identical `image export`. */
  aciBlob?: string;
}

export type { AppcImageManifest };
