// Content addressing, in one place: digests as the OCI spec writes them
// (`sha256:<hex>`, descriptor.md's grammar) and as tspod shows image and layer IDs
// (`sha256-<hex>`, file-name safe); the blob reference every source hands the
// importer; and the size limit of a document read whole.
import { createHash } from 'node:crypto';
import { TspodError, ErrorCode } from '../native/errors.js';

export type Algorithm = 'sha256' | 'sha512';

/** The OCI digest grammar: `algorithm:encoded` (descriptor.md). */
const DIGEST_PATTERN = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
/** Registered algorithms and their exact encodings (descriptor.md). */
const REGISTERED: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
  blake3: /^[a-f0-9]{64}$/,
};

/**
 * Manifests, indexes, configs, an ACI's manifest and a docker-archive's
 * manifest.json are read whole: larger ones are refused (a registry's own limit
 * for manifests is 4 MiB; configs run larger).
 */
export const MAX_MANIFEST_BYTES = 8 << 20;

/** A content descriptor's core (OCI descriptor.md): what the importer fetches and verifies. */
export interface BlobRef {
  mediaType: string;
  /** `sha256:<hex>` */
  digest: string;
  size: number;
}

/** Why a string is not a valid OCI digest, or undefined if it is one (any algorithm of the grammar). */
export function digestProblem(s: string): string | undefined {
  const m = DIGEST_PATTERN.exec(s);
  if (!m) return 'expected <algorithm>:<encoded>';
  const enc = REGISTERED[m[1]];
  if (enc && !enc.test(m[2])) return `wrong encoding for ${m[1]}: lower-case hex of the exact length`;
  return undefined;
}

export interface Digest {
  algorithm: Algorithm;
  hex: string;
}

/** Parses `sha256:<hex>` (OCI form). Throws BadFormat on anything else. */
export function parseDigest(s: string): Digest {
  const m = DIGEST_PATTERN.exec(s);
  if (!m) throw new TspodError(ErrorCode.BadFormat, `invalid digest ${JSON.stringify(s)}`);
  const algorithm = m[1];
  const hex = m[2];
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new TspodError(ErrorCode.Unsupported, `unsupported digest algorithm ${JSON.stringify(algorithm)}`);
  }
  if (!REGISTERED[algorithm].test(hex)) {
    throw new TspodError(ErrorCode.BadFormat, `invalid ${algorithm} digest ${JSON.stringify(s)}`);
  }
  return { algorithm, hex };
}

export function formatDigest(d: Digest): string {
  return `${d.algorithm}:${d.hex}`;
}

/** `sha256:<hex>` → `sha256-<hex>` (IDs shown to users and used as file names). */
export function digestToId(d: Digest | string): string {
  const p = typeof d === 'string' ? parseDigest(d) : d;
  return `${p.algorithm}-${p.hex}`;
}

export function hashBytes(algorithm: Algorithm, data: Buffer | string): Digest {
  return { algorithm, hex: createHash(algorithm).update(data).digest('hex') };
}

export function sha256(data: Buffer | string): string {
  return formatDigest(hashBytes('sha256', data));
}
