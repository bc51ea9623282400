// Decompression: format sniffing, gzip in zlib, zstd/bzip2/xz through the Debian
// tools, and clear BadFormat errors for damaged data.
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { decompress, sniffCompression, type Compression } from '../store/layers/decompress.js';
import { unpackLayer } from '../store/layers/unpack.js';
import { hashTree } from '../store/layers/treehash.js';
import { TspodError, ErrorCode } from '../native/errors.js';

const ROOT = process.env.TSPOD_TEST_ROOT ?? path.resolve('test/data');
let dir = '';
let tarPath = '';
let tarBytes: Buffer = Buffer.alloc(0);

const TOOLS: Record<Exclude<Compression, 'none'>, string[]> = {
  gzip: ['gzip', '-c'],
  zstd: ['zstd', '-q', '-c'],
  bzip2: ['bzip2', '-c'],
  xz: ['xz', '-c'],
};
const compressed: Partial<Record<Compression, Buffer>> = {};

before(() => {
  fs.mkdirSync(ROOT, { recursive: true });
  dir = fs.mkdtempSync(path.join(ROOT, 'decompress-'));
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'random.bin'), crypto.randomBytes(3 << 20));
  fs.writeFileSync(path.join(src, 'sub', 'text'), 'hello\n'.repeat(100000));
  tarPath = path.join(dir, 'layer.tar');
  assert.equal(spawnSync('tar', ['-C', src, '-cf', tarPath, '.']).status, 0);
  tarBytes = fs.readFileSync(tarPath);
  for (const [kind, [cmd, ...args]] of Object.entries(TOOLS)) {
    const r = spawnSync(cmd, [...args, tarPath], { maxBuffer: 1 << 30 });
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
    compressed[kind as Compression] = r.stdout;
  }
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function collect(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The bytes as a stream of 100 KB pieces. */
function streamOf(b: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < b.length; i += 100_000) pieces.push(b.subarray(i, i + 100_000));
  return Readable.from(pieces);
}

function assertBadFormat(pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof TspodError, `expected a TspodError, got ${String(e)}`);
    assert.equal(e.code, ErrorCode.BadFormat, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

describe('decompress', () => {
  test('sniffs every format by its magic bytes', () => {
    for (const kind of Object.keys(TOOLS) as Compression[]) {
      assert.equal(sniffCompression(compressed[kind]!.subarray(0, 6)), kind);
    }
    assert.equal(sniffCompression(tarBytes.subarray(0, 6)), 'none');
    assert.equal(sniffCompression(Buffer.alloc(0)), 'none');
    assert.equal(sniffCompression(Buffer.from([0x1f])), 'none');
    assert.equal(sniffCompression(Buffer.from('BZh0xx')), 'none', 'bzip2 needs a block size digit');
  });

  test('each format, named and sniffed, gives back the tar', async () => {
    for (const kind of Object.keys(TOOLS) as Compression[]) {
      for (const mode of [kind, 'auto'] as const) {
        const out = await collect(decompress(streamOf(compressed[kind]!), mode, 'layer X'));
        assert.equal(out.length, tarBytes.length, `${kind} as ${mode}`);
        assert.ok(out.equals(tarBytes), `${kind} as ${mode}`);
      }
    }
  });

  test('uncompressed input: "none" passes it through, "auto" too', async () => {
    const input = streamOf(tarBytes);
    assert.equal(decompress(input, 'none'), input);
    assert.ok((await collect(decompress(streamOf(tarBytes), 'auto'))).equals(tarBytes));
    assert.deepEqual(await collect(decompress(Readable.from([Buffer.from('ab')]), 'auto')), Buffer.from('ab'));
    assert.equal((await collect(decompress(Readable.from([]), 'auto'))).length, 0);
  });

  test('damaged data is a BadFormat error naming the input', async () => {
    for (const kind of Object.keys(TOOLS) as Exclude<Compression, 'none'>[]) {
      const good = compressed[kind]!;
      const truncated = good.subarray(0, Math.floor(good.length / 2));
      await assert.rejects(collect(decompress(streamOf(truncated), 'auto', 'layer sha256:ab')), assertBadFormat(new RegExp(`^layer sha256:ab: corrupt ${kind} data`)), `${kind} truncated`);
      const flipped = Buffer.from(good);
      for (let i = 100; i < 400; i++) flipped[i] ^= 0x55;
      await assert.rejects(collect(decompress(streamOf(flipped), kind, 'layer sha256:ab')), assertBadFormat(new RegExp(`corrupt ${kind} data`)), `${kind} flipped`);
    }
  });

  test('an error of the input comes out unchanged', async () => {
    const boom = new TspodError(ErrorCode.DigestMismatch, 'layer: content has digest x, expected y');
    const input = new Readable({ read() {} });
    const out = decompress(input, 'zstd');
    input.push(compressed.zstd!.subarray(0, 1000));
    setTimeout(() => input.destroy(boom), 50);
    await assert.rejects(collect(out), (e: unknown) => e === boom);
  });

  test('unpacks through each decompressor', async () => {
    let ref = '';
    for (const kind of Object.keys(TOOLS) as Compression[]) {
      const rootfs = path.join(dir, `rootfs-${kind}`);
      fs.mkdirSync(rootfs);
      const r = await unpackLayer(decompress(streamOf(compressed[kind]!), 'auto'), rootfs);
      assert.equal(r.treeHash, await hashTree(rootfs));
      ref ||= r.treeHash;
      assert.equal(r.treeHash, ref, kind);
    }
  });
});
