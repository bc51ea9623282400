// One layer's CPU- and syscall-heavy half, in a worker thread: decompress → diff_id
// check → unpackLayer into the scratch rootfs. The importer (store/importer.ts) runs
// one of these per layer being imported, so layers unpack on several threads while
// the main thread downloads and checks the compressed digests.
//
// Protocol (the main thread's side is UnpackThread in store/layers/unpack-thread.ts):
//   workerData: UnpackJob
//   main → worker: {t:'chunk', buf: ArrayBuffer (transferred)} | {t:'end'} | {t:'abort', error}
//   worker → main: {t:'ack', n} (bytes taken into the decompressor: credit back)
//                  {t:'unpack-failed'} (the unpacker gave up: stop sending data)
//                  {t:'result', ...WorkerOutcome} (last message; the worker then exits)
// Nothing is written under rootfs after 'result' is posted.
import { parentPort, workerData } from 'node:worker_threads';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompress, type Compression } from './decompress.js';
import { unpackLayer, type UnpackResult } from './unpack.js';
import { Verifier } from '../verify.js';
import { deserializeError, serializeError, type SerializedError, type UnpackJob, type WorkerOutcome } from './unpack-thread.js';

type Incoming = { t: 'chunk'; buf: ArrayBuffer } | { t: 'end' } | { t: 'abort'; error: SerializedError };

const port = parentPort!;
const job = workerData as UnpackJob;

const queue: Buffer[] = [];
let ended = false;
const input = new Readable({
  highWaterMark: 1 << 20,
  read() {
    wanted = true;
    pump();
  },
});

// Chunks go into the stream only when it asks for more (`wanted`), and each is
// acknowledged then: the main thread's credit bounds what waits in `queue`.
let wanted = false;
function pump(): void {
  while (wanted && queue.length) {
    const b = queue.shift()!;
    port.postMessage({ t: 'ack', n: b.length });
    wanted = input.push(b);
  }
  if (wanted && ended && !queue.length && !input.destroyed) {
    wanted = false;
    input.push(null);
  }
}

port.on('message', (m: Incoming) => {
  if (m.t === 'chunk') {
    queue.push(Buffer.from(m.buf));
    pump();
  } else if (m.t === 'end') {
    ended = true;
    pump();
  } else if (m.t === 'abort') {
    queue.length = 0;
    if (!input.destroyed) input.destroy(deserializeError(m.error));
  }
});

async function run(): Promise<WorkerOutcome> {
  const uncompressed = new Verifier({ digest: job.diffId, what: job.verifyWhat });
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const unpacking = pipeline(decompress(input, job.compression as Compression, job.what), uncompressed, out);
  unpacking.catch(() => undefined);
  let unpackError: unknown;
  let result: UnpackResult | undefined;
  try {
    result = await unpackLayer(out, job.rootfs, { what: job.what, lowerRootfs: job.lowerRootfs });
    out.resume(); // tar padding after the end-of-archive blocks
  } catch (e) {
    unpackError = e;
    port.postMessage({ t: 'unpack-failed' });
    queue.length = 0;
    if (!input.destroyed) input.destroy();
    out.destroy();
  }
  // After an unpack error the stopped pipeline's complaint is noise (as in the
  // single-threaded importer): only its own failure counts.
  let unpackingError: unknown;
  try {
    await unpacking;
  } catch (e) {
    if (unpackError === undefined) unpackingError = e;
  }
  return {
    result,
    unpackError: unpackError === undefined ? undefined : serializeError(unpackError),
    unpackingError: unpackingError === undefined ? undefined : serializeError(unpackingError),
  };
}

run().then(
  (outcome) => port.postMessage({ t: 'result', ...outcome }),
  (e: unknown) => port.postMessage({ t: 'result', unpackError: serializeError(e) }),
);
