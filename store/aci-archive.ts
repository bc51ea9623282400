// The archive an ACI came in, kept in the store so that `image export` writes the
// ACI back byte for byte: rkt's contract is that the exported file's sha512 is
// the image ID (docs/architecture.md, "Images").
//
// The image ID is the sha512 of the uncompressed tar, which is what export must
// write; what is kept is the archive as it was fetched (gzip, bzip2 or xz as it
// came, so a compressed ACI costs its compressed size), and a plain tar is kept
// compressed with `zstd -1` (fast; a copy of the tar would double the image's
// disk use). Without zstd on the host a plain tar is kept as it is. The blob is
// content-addressed by the sha256 of the stored bytes (cas/blobs/sha256/…) and
// named in the image record (`aciBlob`); export decompresses it and checks the
// sha512 against the image ID before the output file appears, and `image
// verify` checks both digests.
import fs from 'node:fs';
import path from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TspodError, ErrorCode } from '../native/errors.js';
import { log } from '../native/log.js';
import { decompress, sniffCompression, SNIFF_BYTES, type Compression } from './layers/decompress.js';

export interface KeptArchive {
  /** The scratch file holding the stored bytes. */
  file: string;
  /** `sha256:<hex>` of the stored bytes. */
  digest: string;
  size: number;
  /** How the ACI came (`none`: a plain tar, stored zstd-compressed when zstd is there). */
  fetched: Compression;
}

/** Whether an executable `zstd` is on PATH (looked up once). */
let zstdPath: string | null | undefined;
function findZstd(): string | null {
  if (zstdPath !== undefined) return zstdPath;
  zstdPath = null;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, 'zstd');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      zstdPath = p;
      break;
    } catch {
      /* not here */
    }
  }
  return zstdPath;
}

/**
 * A pass-through stream that writes what flows through it (an ACI as fetched)
 * into `file`, compressing a plain tar with zstd. `result` resolves once the
 * stream has ended and the file is complete and synced.
 */
export class ArchiveKeeper extends Transform {
  private head: Buffer[] = [];
  private headLen = 0;
  private sink?: Writable;
  private finished?: Promise<void>;
  private child?: ChildProcess;
  private readonly hash: Hash = createHash('sha256');
  private size = 0;
  private fetched: Compression = 'none';
  private resolveResult!: (k: KeptArchive) => void;
  private rejectResult!: (e: unknown) => void;
  readonly result: Promise<KeptArchive>;

  constructor(private readonly file: string) {
    super({ highWaterMark: 1 << 20 });
    this.result = new Promise<KeptArchive>((res, rej) => {
      this.resolveResult = res;
      this.rejectResult = rej;
    });
    this.result.catch(() => undefined);
  }

  private start(head: Buffer): void {
    this.fetched = sniffCompression(head);
    const out = fs.createWriteStream(this.file, { flags: 'wx', mode: 0o600 });
    const counter = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.hash.update(chunk);
        this.size += chunk.length;
        cb(null, chunk);
      },
    });
    const zstd = this.fetched === 'none' ? findZstd() : null;
    if (zstd) {
      const child = spawn(zstd, ['-1', '-q', '-c'], { stdio: ['pipe', 'pipe', 'ignore'] });
      this.child = child;
      const exited = new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code, signal) =>
          code === 0 ? resolve() : reject(new TspodError(ErrorCode.System, `zstd exited with ${code ?? signal} while keeping an ACI`)),
        );
      });
      exited.catch(() => undefined);
      child.stdin!.on('error', () => undefined); // reported through its exit
      this.sink = child.stdin!;
      this.finished = Promise.all([pipeline(child.stdout!, counter, out), exited]).then(() => undefined);
    } else {
      this.sink = counter;
      this.finished = pipeline(counter, out);
    }
    this.finished.catch(() => undefined);
  }

  private feed(data: Buffer, cb: () => void): void {
    if (data.length === 0 || this.sink!.write(data)) cb();
    else this.sink!.once('drain', cb);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.sink) {
      this.head.push(chunk);
      this.headLen += chunk.length;
      if (this.headLen < SNIFF_BYTES) {
        cb(null, chunk);
        return;
      }
      const head = Buffer.concat(this.head);
      this.head = [];
      this.start(head);
      this.feed(head, () => cb(null, chunk));
      return;
    }
    this.feed(chunk, () => cb(null, chunk));
  }

  override _flush(cb: TransformCallback): void {
    const finish = async (): Promise<void> => {
      if (!this.sink) {
        const head = Buffer.concat(this.head);
        this.head = [];
        this.start(head);
        if (head.length) await new Promise<void>((r) => this.feed(head, r));
      }
      this.sink!.end();
      await this.finished;
      const fd = fs.openSync(this.file, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      this.resolveResult({ file: this.file, digest: `sha256:${this.hash.digest('hex')}`, size: this.size, fetched: this.fetched });
    };
    finish().then(
      () => cb(),
      (e: unknown) => {
        this.rejectResult(e);
        cb(e instanceof Error ? e : new Error(String(e)));
      },
    );
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.child?.kill('SIGKILL');
    this.sink?.destroy();
    this.rejectResult(err ?? new Error('ACI archive keeper closed'));
    cb(err);
  }
}

/**
 * Streams the uncompressed ACI of image `id` from its kept archive `blobFile`
 * into `dest` (an open write stream's target) and checks that its sha512 is the
 * image ID (rkt keeps the first 64 hex digits). Returns the full sha512 hex.
 */
export async function writeKeptAci(blobFile: string, id: string, dest: Writable): Promise<string> {
  const what = `the stored ACI of image ${id}`;
  let src: fs.ReadStream;
  try {
    src = fs.createReadStream(blobFile, { highWaterMark: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      src.once('open', () => resolve());
      src.once('error', reject);
    });
  } catch (e) {
    throw new TspodError(ErrorCode.NotFound, `${what} is missing from the store`, { hint: 'fetch the image again', cause: e });
  }
  const hash = createHash('sha512');
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  await pipeline(decompress(src, 'auto', what), hasher, dest);
  const hex = hash.digest('hex');
  const want = id.slice('sha512-'.length);
  if (!hex.startsWith(want)) {
    throw new TspodError(ErrorCode.DigestMismatch, `${what} was modified: its sha512 is sha512-${hex.slice(0, 64)}`, {
      hint: 'remove the image and fetch it again',
    });
  }
  return hex;
}

/** `image verify` for a kept ACI archive: both digests; what no longer matches. */
export async function verifyKeptAci(blobFile: string, blobDigest: string, id: string): Promise<string[]> {
  const problems: string[] = [];
  const raw = createHash('sha256');
  try {
    await pipeline(fs.createReadStream(blobFile), async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) raw.update(chunk);
    });
  } catch (e) {
    return [`the stored ACI ${blobDigest} cannot be read (${(e as Error).message})`];
  }
  const got = `sha256:${raw.digest('hex')}`;
  if (got !== blobDigest) problems.push(`the stored ACI ${blobDigest} was modified (its digest is ${got})`);
  try {
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    await writeKeptAci(blobFile, id, sink);
  } catch (e) {
    if (!problems.length) problems.push(e instanceof TspodError ? e.message : String(e));
  }
  log().debug(`verified the stored ACI of ${id}`);
  return problems;
}
