// Digests as the OCI spec writes them (`sha256:<hex>`) and as tspod shows image
// and layer IDs (`sha256-<hex>`, file-name safe).
import { createHash } from 'node:crypto';
import { TspodError, ErrorCode } from '../native/errors.js';

export type Algorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<Algorithm, number> = { sha256: 64, sha512: 128 };

export interface Digest {
  algorithm: Algorithm;
  hex: string;
}

/** Parses `sha256:<hex>` (OCI form). Throws BadFormat on anything else. */
export function parseDigest(s: string): Digest {
  const m = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(s);
  if (!m) throw new TspodError(ErrorCode.BadFormat, `invalid digest ${JSON.stringify(s)}`);
  const algorithm = m[1];
  const hex = m[2];
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new TspodError(ErrorCode.Unsupported, `unsupported digest algorithm ${JSON.stringify(algorithm)}`);
  }
  if (!/^[a-f0-9]+$/.test(hex) || hex.length !== HEX_LENGTH[algorithm]) {
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
