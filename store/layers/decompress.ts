// Decompression of layers and ACIs. gzip runs in zlib (on libuv's thread pool, so
// it overlaps with the unpacker's work on the main thread); zstd, bzip2 and xz run
// as the Debian tools (`zstd -dc`, `bzip2 -dc`, `xz -dc`) in a child process.
// Whatever a decompressor rejects becomes one BadFormat error naming the input.
// The output ends only once the decompressor has said the data was good: a child
// tool's exit status is awaited before the end of the stream is signalled.
import { Duplex, PassThrough, type Readable } from 'node:stream';
import { spawn, type ChildProcess } from 'node:child_process';
import zlib from 'node:zlib';
import { TspodError, ErrorCode, isTspodError } from '../../native/errors.js';

export type Compression = 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'none';

/** Bytes needed to tell the formats apart. */
export const SNIFF_BYTES = 6;

/** The compression of a stream, from its first bytes (at least SNIFF_BYTES when available). */
export function sniffCompression(head: Buffer): Compression {
  const at = (i: number) => (i < head.length ? head[i] : -1);
  if (at(0) === 0x1f && at(1) === 0x8b) return 'gzip';
  if (at(0) === 0x28 && at(1) === 0xb5 && at(2) === 0x2f && at(3) === 0xfd) return 'zstd';
  // zstd skippable frames: 0x184D2A50..5F, little-endian.
  if ((at(0) & 0xf0) === 0x50 && at(1) === 0x2a && at(2) === 0x4d && at(3) === 0x18) return 'zstd';
  if (at(0) === 0x42 && at(1) === 0x5a && at(2) === 0x68 && at(3) >= 0x31 && at(3) <= 0x39) return 'bzip2';
  if (at(0) === 0xfd && at(1) === 0x37 && at(2) === 0x7a && at(3) === 0x58 && at(4) === 0x5a && at(5) === 0x00) return 'xz';
  return 'none';
}

const TOOLS: Record<'zstd' | 'bzip2' | 'xz', { cmd: string; args: string[]; pkg: string }> = {
  zstd: { cmd: 'zstd', args: ['-dcq'], pkg: 'zstd' },
  bzip2: { cmd: 'bzip2', args: ['-dc'], pkg: 'bzip2' },
  xz: { cmd: 'xz', args: ['-dc'], pkg: 'xz-utils' },
};

const OUT_HWM = 1 << 20;

/**
 * The decompressed content of `input`. 'auto' looks at the first bytes. `what`
 * names the input in errors ("layer sha256:…"). Errors of `input` itself come out
 * unchanged. Destroying the result (or a decompression error) stops the
 * decompressor and unpipes `input` without destroying it, so that a caller can
 * still drain it through its digest check.
 */
export function decompress(input: Readable, kind: Compression | 'auto', what = 'layer'): Readable {
  if (kind === 'none') return input;
  const d = new Decoder(kind, what);
  input.on('error', (e) => d.destroy(e));
  d.on('close', () => input.unpipe(d));
  input.pipe(d);
  return d;
}

/** A decoder whose engine is chosen up front or from the first bytes written. */
class Decoder extends Duplex {
  private engine?: Duplex;
  private head: Buffer[] = [];
  private headLen = 0;

  constructor(
    kind: Compression | 'auto',
    private readonly what: string,
  ) {
    super({ readableHighWaterMark: OUT_HWM });
    if (kind !== 'auto') this.start(kind);
  }

  private start(kind: Compression): Duplex {
    const engine: Duplex =
      kind === 'none'
        ? new PassThrough({ highWaterMark: OUT_HWM })
        : kind === 'gzip'
          ? zlib.createGunzip({ chunkSize: 128 * 1024 })
          : new ToolDecoder(kind, this.what);
    this.engine = engine;
    engine.on('data', (c: Buffer) => {
      if (!this.push(c)) engine.pause();
    });
    engine.on('end', () => this.push(null));
    engine.on('error', (e) => this.destroy(this.mapError(kind, e)));
    return engine;
  }

  private mapError(kind: Compression, e: unknown): Error {
    if (isTspodError(e)) return e;
    const msg = e instanceof Error ? e.message : String(e);
    return new TspodError(ErrorCode.BadFormat, `${this.what}: corrupt ${kind} data (${msg})`, { cause: e });
  }

  override _read(): void {
    this.engine?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    let engine = this.engine;
    if (!engine) {
      this.head.push(chunk);
      this.headLen += chunk.length;
      if (this.headLen < SNIFF_BYTES) {
        cb();
        return;
      }
      chunk = Buffer.concat(this.head);
      this.head = [];
      engine = this.start(sniffCompression(chunk));
    }
    if (engine.write(chunk)) cb();
    else engine.once('drain', () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    let engine = this.engine;
    if (!engine) {
      const head = Buffer.concat(this.head);
      this.head = [];
      engine = this.start(sniffCompression(head));
      if (head.length > 0) engine.write(head);
    }
    engine.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.engine?.destroy();
    cb(err);
  }
}

/** `zstd -dc` & co. as a Duplex: stdin is the write side, stdout the read side. */
class ToolDecoder extends Duplex {
  private readonly child: ChildProcess;
  private stdinBroken = false;
  private stdoutEnded = false;
  private exit?: { code: number | null; signal: NodeJS.Signals | null };
  private stderr = '';
  private failed = false;

  constructor(
    private readonly kind: 'zstd' | 'bzip2' | 'xz',
    private readonly what: string,
  ) {
    super({ readableHighWaterMark: OUT_HWM });
    const tool = TOOLS[kind];
    this.child = spawn(tool.cmd, tool.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const { stdin, stdout, stderr } = this.child;
    this.child.on('error', (e: NodeJS.ErrnoException) => {
      this.failed = true;
      const err =
        e.code === 'ENOENT'
          ? new TspodError(ErrorCode.System, `${what}: cannot decompress ${kind} data: ${tool.cmd} is not installed`, {
              hint: `install the Debian package ${tool.pkg}`,
            })
          : new TspodError(ErrorCode.System, `${what}: cannot run ${tool.cmd}: ${e.message}`, { cause: e });
      this.destroy(err);
    });
    stdin!.on('error', () => {
      // EPIPE: the tool stopped reading (bad data); its exit status says why.
      this.stdinBroken = true;
    });
    stderr!.on('data', (c: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += c.toString();
    });
    stdout!.on('data', (c: Buffer) => {
      if (!this.push(c)) stdout!.pause();
    });
    stdout!.on('end', () => {
      this.stdoutEnded = true;
      this.settle();
    });
    this.child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      this.settle();
    });
  }

  private settle(): void {
    if (!this.stdoutEnded || !this.exit || this.failed || this.destroyed) return;
    const { code, signal } = this.exit;
    if (code === 0) {
      this.push(null);
      return;
    }
    this.failed = true;
    const detail = this.stderr.trim().split('\n').filter(Boolean).pop() ?? (signal ? `killed by ${signal}` : `exit status ${code}`);
    this.destroy(new TspodError(ErrorCode.BadFormat, `${this.what}: corrupt ${this.kind} data (${detail})`));
  }

  override _read(): void {
    this.child.stdout?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const stdin = this.child.stdin!;
    if (this.stdinBroken || stdin.destroyed) {
      cb();
      return;
    }
    if (stdin.write(chunk)) cb();
    else {
      const done = () => {
        stdin.off('drain', done);
        stdin.off('close', done);
        cb();
      };
      stdin.on('drain', done);
      stdin.on('close', done);
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (!this.stdinBroken && !this.child.stdin!.destroyed) this.child.stdin!.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.exit === undefined && this.child.exitCode === null) this.child.kill('SIGKILL');
    this.child.stdin?.destroy();
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    cb(err);
  }
}
