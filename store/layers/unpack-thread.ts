// The main thread's side of an unpack worker (store/layers/unpack-worker.ts): starts
// the worker, feeds it the verified compressed bytes through a Writable with
// credit-based flow control (at most WINDOW bytes posted and not yet taken by the
// worker's decompressor), and turns its answer back into an UnpackResult or errors.
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { TspodError, ErrorCode, isTspodError, type Remedy } from '../../native/errors.js';
import { MissingLinkTargetError, type UnpackResult } from './unpack.js';

export interface UnpackJob {
  rootfs: string;
  /** Names the layer in unpack and decompress errors ("layer sha256:…"). */
  what: string;
  /** Names the uncompressed stream in a diff_id mismatch. */
  verifyWhat: string;
  diffId: string;
  compression: string;
  lowerRootfs?: string[];
}

export interface SerializedError {
  tspod: boolean;
  code?: string;
  message: string;
  hint?: string;
  remedy?: Remedy;
  missingLinkTarget?: boolean;
}

export interface WorkerOutcome {
  result?: UnpackResult;
  /** What unpackLayer threw. */
  unpackError?: SerializedError;
  /** What the decompress → diff_id pipeline threw (only when the unpacker did not fail). */
  unpackingError?: SerializedError;
}

export function serializeError(e: unknown): SerializedError {
  if (isTspodError(e)) {
    return { tspod: true, code: e.code, message: e.message, hint: e.hint, remedy: e.remedy, missingLinkTarget: e instanceof MissingLinkTargetError };
  }
  const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
  return { tspod: false, code, message: e instanceof Error ? e.message : String(e) };
}

export function deserializeError(s: SerializedError): Error {
  if (s.tspod) {
    if (s.missingLinkTarget) return new MissingLinkTargetError(s.message);
    return new TspodError(s.code as ErrorCode, s.message, { hint: s.hint, remedy: s.remedy });
  }
  const e = new Error(s.message) as Error & { code?: string };
  if (s.code !== undefined) e.code = s.code;
  return e;
}

/** Bytes posted to the worker and not yet taken by it before the sink waits. */
const WINDOW = 8 << 20;
/** Small network chunks are gathered into messages of about this size. */
const BATCH = 256 << 10;

let workerUrl: URL | undefined;

/** unpack-worker.js: next to this module (tsc's build/, or bin/tspod-js/main.js) or one up (a bundle chunk). */
function findWorker(): URL {
  if (workerUrl) return workerUrl;
  for (const rel of ['./unpack-worker.js', '../unpack-worker.js']) {
    const u = new URL(rel, import.meta.url);
    if (fs.existsSync(fileURLToPath(u))) return (workerUrl = u);
  }
  throw new TspodError(ErrorCode.System, `unpack-worker.js is missing next to ${fileURLToPath(import.meta.url)}`, {
    hint: 'the tspod installation is incomplete; rebuild it (make)',
  });
}

export class UnpackThread {
  /** Where the verified compressed bytes go; ending it ends the worker's input. */
  readonly sink: Writable;
  /** The worker's answer; never rejects (a crashed worker is an unpackError). */
  readonly outcome: Promise<WorkerOutcome>;
  private readonly worker: Worker;
  private inFlight = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private waiting?: () => void;
  /** The worker no longer wants data (it failed, or it has answered). */
  private abandoned = false;
  private finished = false;

  constructor(job: UnpackJob) {
    this.worker = new Worker(findWorker(), { workerData: job });
    const self = this;
    this.sink = new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _enc, cb) {
        if (self.abandoned) return cb();
        self.pending.push(chunk);
        self.pendingBytes += chunk.length;
        if (self.pendingBytes >= BATCH) self.flush();
        if (self.inFlight <= WINDOW) return cb();
        self.waiting = cb;
      },
      final(cb) {
        if (!self.abandoned) {
          self.flush();
          self.worker.postMessage({ t: 'end' });
        }
        cb();
      },
    });
    this.outcome = new Promise<WorkerOutcome>((resolve) => {
      const answer = (o: WorkerOutcome) => {
        if (this.finished) return;
        this.finished = true;
        this.abandon();
        resolve(o);
      };
      this.worker.on('message', (m: { t: string; n?: number } & WorkerOutcome) => {
        if (m.t === 'ack') {
          this.inFlight -= m.n!;
          if (this.waiting && this.inFlight <= WINDOW) this.release();
        } else if (m.t === 'unpack-failed') {
          this.abandon();
        } else if (m.t === 'result') {
          answer({ result: m.result, unpackError: m.unpackError, unpackingError: m.unpackingError });
        }
      });
      const crashed = (why: string) =>
        answer({ unpackError: serializeError(new TspodError(ErrorCode.System, `${job.what}: the unpack thread ${why}`)) });
      this.worker.on('error', (e) => crashed(`failed: ${e instanceof Error ? e.message : String(e)}`));
      this.worker.on('exit', (code) => crashed(`exited (status ${code}) before it finished`));
    });
  }

  /** The download failed: the worker stops, and reports this error as its input's. */
  abort(e: unknown): void {
    if (this.finished) return;
    this.abandon();
    this.worker.postMessage({ t: 'abort', error: serializeError(e) });
  }

  /** Stops the worker (after its answer, it only waits for messages). */
  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private flush(): void {
    if (!this.pendingBytes) return;
    const joined = this.pending.length > 1;
    const one = joined ? Buffer.concat(this.pending, this.pendingBytes) : this.pending[0];
    // A stream's Buffer may share its ArrayBuffer with others (pools): only a buffer
    // made here, spanning its whole ArrayBuffer, is transferred as it is.
    const ab =
      joined && one.byteOffset === 0 && one.buffer.byteLength === one.length
        ? (one.buffer as ArrayBuffer)
        : (one.buffer.slice(one.byteOffset, one.byteOffset + one.length) as ArrayBuffer);
    this.inFlight += one.length;
    this.pending = [];
    this.pendingBytes = 0;
    this.worker.postMessage({ t: 'chunk', buf: ab }, [ab]);
  }

  private abandon(): void {
    this.abandoned = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.release();
  }

  private release(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}
