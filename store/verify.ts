// A pass-through stream that hashes and counts what flows through it and fails at
// the end if the digest or the size is not what was promised. Every byte that
// enters the store flows through one of these.
import { Transform, type TransformCallback } from 'node:stream';
import { createHash, type Hash } from 'node:crypto';
import { TspodError, ErrorCode } from '../native/errors.js';
import { parseDigest, type Algorithm } from './digest.js';

export interface Expected {
  /** `sha256:<hex>`; omit to only measure. */
  digest?: string;
  /** Exact size in bytes; omit or -1 if unknown. */
  size?: number;
  /** What the bytes are, for the error message ("layer sha256:ab…", "config"). */
  what: string;
}

export class Verifier extends Transform {
  private readonly hash: Hash;
  private readonly algorithm: Algorithm;
  bytes = 0;
  /** The digest seen, set once the stream has ended. */
  digest?: string;

  constructor(private readonly expected: Expected, algorithm?: Algorithm) {
    super();
    this.algorithm = expected.digest ? parseDigest(expected.digest).algorithm : (algorithm ?? 'sha256');
    this.hash = createHash(this.algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    const size = this.expected.size;
    if (size !== undefined && size >= 0 && this.bytes > size) {
      cb(new TspodError(ErrorCode.DigestMismatch, `${this.expected.what}: more data than the ${size} bytes its descriptor declares`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.digest = `${this.algorithm}:${this.hash.digest('hex')}`;
    const size = this.expected.size;
    if (size !== undefined && size >= 0 && this.bytes !== size) {
      cb(new TspodError(ErrorCode.DigestMismatch, `${this.expected.what}: got ${this.bytes} bytes, expected ${size} (truncated or tampered download)`));
      return;
    }
    if (this.expected.digest && this.digest !== this.expected.digest) {
      cb(new TspodError(ErrorCode.DigestMismatch, `${this.expected.what}: content has digest ${this.digest}, expected ${this.expected.digest}`));
      return;
    }
    cb();
  }
}

/** Checks a whole buffer the same way. */
export function verifyBytes(bytes: Buffer, expected: Expected): void {
  const algorithm = expected.digest ? parseDigest(expected.digest).algorithm : 'sha256';
  const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
  if (expected.size !== undefined && expected.size >= 0 && bytes.length !== expected.size) {
    throw new TspodError(ErrorCode.DigestMismatch, `${expected.what}: got ${bytes.length} bytes, expected ${expected.size}`);
  }
  if (expected.digest && digest !== expected.digest) {
    throw new TspodError(ErrorCode.DigestMismatch, `${expected.what}: content has digest ${digest}, expected ${expected.digest}`);
  }
}
