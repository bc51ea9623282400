// Layer unpacking: entry types and metadata, whiteouts, duplicates, PAX/GNU
// headers, hardlinks into lower layers, the tree hash, and above all that a
// malicious layer never writes outside its directory.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { unpackLayer, type UnpackResult } from '../store/layers/unpack.js';
import { hashTree } from '../store/layers/treehash.js';
import { kernel } from '../native/sys.js';
import { TspodError, ErrorCode } from '../native/errors.js';

const { lgetxattr, lsetxattr, lremovexattr } = kernel;

const ROOT = process.env.TSPOD_TEST_ROOT ?? path.resolve('test/data');
const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

function tmpdir(name: string): string {
  fs.mkdirSync(ROOT, { recursive: true });
  const d = fs.mkdtempSync(path.join(ROOT, `unpack-${name}-`));
  made.push(d);
  return d;
}

interface Ent {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';
  data?: string;
  hex?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
  paxhex?: Record<string, string>;
}

// A tar writer that is not ours (python's tarfile), which also writes what a
// well-behaved one would refuse to (`..`, absolute names, odd orders).
const PY_TAR = `
import io, json, sys, tarfile
spec = json.load(sys.stdin)
fmt = {'pax': tarfile.PAX_FORMAT, 'gnu': tarfile.GNU_FORMAT, 'ustar': tarfile.USTAR_FORMAT}[spec.get('format', 'pax')]
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'link': tarfile.LNKTYPE,
         'char': tarfile.CHRTYPE, 'block': tarfile.BLKTYPE, 'fifo': tarfile.FIFOTYPE}
with tarfile.open(spec['out'], 'w', format=fmt) as t:
    for e in spec['entries']:
        ti = tarfile.TarInfo(e['name'])
        kind = e.get('type', 'file')
        ti.type = types[kind]
        ti.mode = e.get('mode', 0o755 if kind == 'dir' else 0o644)
        ti.uid = e.get('uid', 0)
        ti.gid = e.get('gid', 0)
        ti.uname = ti.gname = ''
        ti.mtime = e.get('mtime', 1600000000)
        ti.linkname = e.get('linkname', '')
        ti.devmajor = e.get('devmajor', 0)
        ti.devminor = e.get('devminor', 0)
        pax = {k: bytes.fromhex(v).decode('utf-8', 'surrogateescape') for k, v in e.get('paxhex', {}).items()}
        pax.update(e.get('pax', {}))
        if pax:
            ti.pax_headers = pax
        data = None
        if kind == 'file':
            data = bytes.fromhex(e['hex']) if 'hex' in e else e.get('data', '').encode()
            ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
`;

function makeTar(out: string, entries: Ent[], format: 'pax' | 'gnu' | 'ustar' = 'pax'): void {
  const r = spawnSync('python3', ['-c', PY_TAR], { input: JSON.stringify({ out, entries, format }) });
  if (r.status !== 0) throw new Error(`python tar writer failed: ${r.stderr.toString()}`);
}

interface Case {
  dir: string;
  rootfs: string;
  outside: string;
}

/** A work dir with rootfs/ (empty) and outside/sentinel, the canary for escapes. */
function setup(name: string): Case {
  const dir = tmpdir(name);
  const rootfs = path.join(dir, 'rootfs');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(rootfs);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'sentinel'), 'untouched');
  return { dir, rootfs, outside };
}

async function unpack(c: Case, entries: Ent[], opts: { lowerRootfs?: string[]; format?: 'pax' | 'gnu' | 'ustar' } = {}): Promise<UnpackResult> {
  const tar = path.join(c.dir, 'layer.tar');
  makeTar(tar, entries, opts.format);
  return unpackLayer(fs.createReadStream(tar), c.rootfs, { what: 'layer sha256:test', lowerRootfs: opts.lowerRootfs });
}

/** Nothing outside rootfs changed: the work dir and outside/ hold what setup() made. */
function assertOutsideUntouched(c: Case): void {
  assert.deepEqual(fs.readdirSync(c.dir).sort(), ['layer.tar', 'outside', 'rootfs']);
  assert.deepEqual(fs.readdirSync(c.outside), ['sentinel']);
  assert.equal(fs.readFileSync(path.join(c.outside, 'sentinel'), 'utf8'), 'untouched');
  const st = fs.lstatSync(path.join(c.outside, 'sentinel'));
  assert.equal(st.nlink, 1);
  assert.equal(st.mode & 0o7777, 0o644);
  assert.equal(lgetxattr(c.outside, 'trusted.overlay.opaque'), undefined);
}

async function assertRefused(c: Case, entries: Ent[], code: string, pattern: RegExp, opts: { lowerRootfs?: string[] } = {}): Promise<void> {
  await assert.rejects(unpack(c, entries, opts), (e: unknown) => {
    assert.ok(e instanceof TspodError, `expected a TspodError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    assert.match(e.message, /^layer sha256:test: /);
    assert.ok(!e.line.includes('\n'), 'one line');
    return true;
  });
  assertOutsideUntouched(c);
}

function sha(s: string | Buffer): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}

describe('unpack: path safety', () => {
  test('".." components are refused', async () => {
    for (const name of ['../outside/pwned', 'a/../../outside/pwned', './../outside/pwned', 'a/b/../c']) {
      const c = setup('dotdot');
      await assertRefused(c, [{ name: 'a/', type: 'dir' }, { name, data: 'x' }], ErrorCode.UnsafeLayer, new RegExp(`refusing unsafe layer: entry "${name.replace(/\./g, '\\.')}" has a "\\.\\." path component`));
    }
  });

  test('absolute paths are refused', async () => {
    const c = setup('abs');
    await assertRefused(c, [{ name: path.join(c.outside, 'pwned'), data: 'x' }], ErrorCode.UnsafeLayer, /entry ".*\/outside\/pwned" is an absolute path/);
  });

  test('writing through a symlink of the layer is refused', async () => {
    for (const target of ['OUTSIDE', '../outside', '/', '.']) {
      const c = setup('through-symlink');
      const linkname = target === 'OUTSIDE' ? c.outside : target;
      await assertRefused(
        c,
        [
          { name: 'a', type: 'symlink', linkname },
          { name: 'a/pwned', data: 'x' },
        ],
        ErrorCode.UnsafeLayer,
        /entry "a\/pwned" would be written through symlink "a"/,
      );
    }
    const c = setup('through-symlink-deep');
    await assertRefused(
      c,
      [
        { name: 'x/y/', type: 'dir' },
        { name: 'x/y/z', type: 'symlink', linkname: '../../../outside' },
        { name: 'x/y/z/sub/pwned', data: 'x' },
      ],
      ErrorCode.UnsafeLayer,
      /entry "x\/y\/z\/sub\/pwned" would be written through symlink "x\/y\/z"/,
    );
  });

  test('a directory through a symlink is refused', async () => {
    const c = setup('through-symlink-dir');
    await assertRefused(
      c,
      [
        { name: 'a', type: 'symlink', linkname: c.outside },
        { name: 'a/sub/', type: 'dir' },
      ],
      ErrorCode.UnsafeLayer,
      /entry "a\/sub\/" would be written through symlink "a"/,
    );
  });

  test('whiteouts and opaque markers under a non-directory do nothing', async () => {
    const c = setup('marker-under-nondir');
    const r = await unpack(c, [
      { name: 'a', type: 'symlink', linkname: c.outside },
      { name: 'a/.wh.sentinel' },
      { name: 'a/.wh..wh..opq' },
      { name: 'f', data: 'file replacing a lower directory' },
      { name: 'f/.wh.child' },
      { name: 'w/.wh.x' },
      { name: '.wh.w' },
      { name: 'w/.wh.y' },
    ]);
    assertOutsideUntouched(c);
    assert.deepEqual(fs.readdirSync(c.rootfs).sort(), ['a', 'f', 'w']);
    assert.ok(fs.lstatSync(path.join(c.rootfs, 'w')).isDirectory(), 'w/.wh.x made w; .wh.w then only hides the lower w: w is opaque');
    assert.equal(lgetxattr(path.join(c.rootfs, 'w'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(r.treeHash, await hashTree(c.rootfs));
  });

  test('a symlink replacing a directory cannot be written through afterwards', async () => {
    const c = setup('order');
    await assertRefused(
      c,
      [
        { name: 'a/', type: 'dir' },
        { name: 'a/b', data: 'inside' },
        { name: 'a', type: 'symlink', linkname: c.outside },
        { name: 'a/c', data: 'x' },
      ],
      ErrorCode.UnsafeLayer,
      /entry "a\/c" would be written through symlink "a"/,
    );
  });

  test('hardlinks: absolute, "..", through a symlink, through a hardlinked symlink', async () => {
    let c = setup('hl-abs');
    await assertRefused(c, [{ name: 'passwd', type: 'link', linkname: '/etc/passwd' }], ErrorCode.UnsafeLayer, /hardlink "passwd" target "\/etc\/passwd" is an absolute path/);
    c = setup('hl-dotdot');
    await assertRefused(c, [{ name: 'h', type: 'link', linkname: '../outside/sentinel' }], ErrorCode.UnsafeLayer, /hardlink "h" target "\.\.\/outside\/sentinel" has a "\.\." path component/);
    c = setup('hl-symlink');
    await assertRefused(
      c,
      [
        { name: 'a', type: 'symlink', linkname: '/' },
        { name: 'b', type: 'link', linkname: 'a/etc/passwd' },
      ],
      ErrorCode.UnsafeLayer,
      /hardlink "b" target "a\/etc\/passwd" goes through symlink "a"/,
    );
    c = setup('hl-symlink-outside');
    await assertRefused(
      c,
      [
        { name: 'a', type: 'symlink', linkname: c.outside },
        { name: 'b', type: 'link', linkname: 'a/sentinel' },
      ],
      ErrorCode.UnsafeLayer,
      /goes through symlink "a"/,
    );
    c = setup('hl-to-symlink');
    await assertRefused(
      c,
      [
        { name: 's', type: 'symlink', linkname: c.outside },
        { name: 'h', type: 'link', linkname: 's' },
        { name: 'h/pwned', data: 'x' },
      ],
      ErrorCode.UnsafeLayer,
      /entry "h\/pwned" would be written through symlink "h"/,
    );
  });

  test('hardlink through a symlink of a lower layer is refused', async () => {
    const lower = setup('lower-symlink');
    await unpack(lower, [{ name: 'a', type: 'symlink', linkname: lower.outside }]);
    const c = setup('hl-lower-symlink');
    await assertRefused(c, [{ name: 'h', type: 'link', linkname: 'a/sentinel' }], ErrorCode.UnsafeLayer, /goes through symlink "a" of a lower layer/, {
      lowerRootfs: [lower.rootfs],
    });
    assertOutsideUntouched(lower);
  });

  test('invalid whiteout names are refused', async () => {
    for (const name of ['a/.wh.', 'a/.wh..', 'a/.wh...']) {
      const c = setup('bad-whiteout');
      await assertRefused(c, [{ name: 'a/', type: 'dir' }, { name }], ErrorCode.UnsafeLayer, /would delete its own directory/);
    }
  });

  test('replacing a symlink never writes through it', async () => {
    const c = setup('replace-symlink');
    const r = await unpack(c, [
      { name: 'a', type: 'symlink', linkname: path.join(c.outside, 'sentinel') },
      { name: 'a', data: 'new content' },
      { name: 'd', type: 'symlink', linkname: c.outside },
      { name: 'd/', type: 'dir' },
      { name: 'd/sentinel', data: 'inside' },
      { name: 'f', data: 'original' },
      { name: 'l', type: 'link', linkname: 'f' },
      { name: 'l', data: 'replaced' },
      { name: 's', type: 'symlink', linkname: c.outside },
      { name: 's', type: 'char', devmajor: 1, devminor: 3 },
    ]);
    assertOutsideUntouched(c);
    assert.ok(fs.lstatSync(path.join(c.rootfs, 'a')).isFile());
    assert.equal(fs.readFileSync(path.join(c.rootfs, 'a'), 'utf8'), 'new content');
    assert.ok(fs.lstatSync(path.join(c.rootfs, 'd')).isDirectory());
    assert.equal(fs.readFileSync(path.join(c.rootfs, 'd/sentinel'), 'utf8'), 'inside');
    assert.equal(fs.readFileSync(path.join(c.rootfs, 'f'), 'utf8'), 'original');
    assert.equal(fs.readFileSync(path.join(c.rootfs, 'l'), 'utf8'), 'replaced');
    assert.ok(fs.lstatSync(path.join(c.rootfs, 's')).isCharacterDevice());
    assert.equal(r.treeHash, await hashTree(c.rootfs));
  });

  test('trusted.overlay.* xattrs from the tar are ignored', async () => {
    const c = setup('overlay-xattr');
    const r = await unpack(c, [
      { name: 'd/', type: 'dir', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } },
    ]);
    assert.equal(lgetxattr(path.join(c.rootfs, 'd'), 'trusted.overlay.opaque'), undefined);
    assert.equal(lgetxattr(path.join(c.rootfs, 'd'), 'trusted.overlay.redirect'), undefined);
    assert.ok(r.warnings.some((w) => w.includes('trusted.overlay.opaque')));
  });
});

describe('unpack: entries and metadata', () => {
  test('types, modes, owners, times, devices, hardlinks, xattrs', async () => {
    const c = setup('meta');
    // vfs_cap_data v2 granting cap_net_raw (a binary value with NULs in it)
    const cap = '0100000200200000000000000000000000000000';
    const r = await unpack(c, [
      { name: 'bin/', type: 'dir', mode: 0o755, mtime: 1000000000 },
      { name: 'bin/suid', data: 'x', mode: 0o4755, uid: 1000, gid: 1001, mtime: 1234567890 },
      { name: 'bin/ping', data: 'ping', mode: 0o755, paxhex: { 'SCHILY.xattr.security.capability': cap } },
      { name: 'bin/user', data: 'u', pax: { 'SCHILY.xattr.user.note': 'hello' } },
      { name: 'bin/la', data: 'l', pax: { 'LIBARCHIVE.xattr.user.b64': Buffer.from('via libarchive').toString('base64') } },
      { name: 'tmp/', type: 'dir', mode: 0o1777, uid: 5, gid: 6, mtime: 1100000000 },
      { name: 'tmp/child', data: 'c', mtime: 1200000000 },
      { name: 'sg/', type: 'dir', mode: 0o2775, gid: 50 },
      { name: 'sg/sub/', type: 'dir', mode: 0o755 },
      { name: 'sg/file', data: 'f' },
      { name: 'link', type: 'symlink', linkname: 'bin/suid', uid: 7, gid: 8, mtime: 1300000000 },
      { name: 'dangling', type: 'symlink', linkname: '/nonexistent/../x' },
      { name: 'fifo', type: 'fifo', mode: 0o640 },
      { name: 'null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
      { name: 'sda1', type: 'block', mode: 0o660, gid: 6, devmajor: 8, devminor: 1 },
      { name: 'hard', type: 'link', linkname: 'bin/suid' },
      { name: 'implicit/deep/file', data: 'deep' },
    ]);
    const st = (p: string) => fs.lstatSync(path.join(c.rootfs, p));
    assert.equal(st('bin/suid').mode & 0o7777, 0o4755);
    assert.equal(st('bin/suid').uid, 1000);
    assert.equal(st('bin/suid').gid, 1001);
    assert.equal(st('bin/suid').mtimeMs, 1234567890000);
    assert.equal(st('bin').mtimeMs, 1000000000000);
    assert.equal(st('tmp').mode & 0o7777, 0o1777);
    assert.equal(st('tmp').uid, 5);
    assert.equal(st('tmp').mtimeMs, 1100000000000, 'directory time set after its contents');
    assert.equal(st('sg').mode & 0o7777, 0o2775);
    assert.equal(st('sg/sub').mode & 0o7777, 0o755, 'no setgid inherited');
    assert.equal(st('sg/sub').gid, 0, 'no group inherited');
    assert.equal(st('sg/file').gid, 0);
    assert.ok(st('link').isSymbolicLink());
    assert.equal(fs.readlinkSync(path.join(c.rootfs, 'link')), 'bin/suid');
    assert.equal(st('link').uid, 7);
    assert.equal(st('link').mtimeMs, 1300000000000);
    assert.equal(fs.readlinkSync(path.join(c.rootfs, 'dangling')), '/nonexistent/../x');
    assert.ok(st('fifo').isFIFO());
    assert.equal(st('fifo').mode & 0o7777, 0o640);
    assert.ok(st('null').isCharacterDevice());
    assert.equal(st('null').rdev, 0x103);
    assert.equal(st('null').mode & 0o7777, 0o666);
    assert.ok(st('sda1').isBlockDevice());
    assert.equal(st('sda1').rdev, 0x801);
    assert.equal(st('hard').ino, st('bin/suid').ino);
    assert.equal(st('hard').nlink, 2);
    assert.equal(fs.readFileSync(path.join(c.rootfs, 'implicit/deep/file'), 'utf8'), 'deep');
    assert.equal(st('implicit').mode & 0o7777, 0o755);
    assert.deepEqual(lgetxattr(path.join(c.rootfs, 'bin/ping'), 'security.capability'), Buffer.from(cap, 'hex'));
    assert.equal(lgetxattr(path.join(c.rootfs, 'bin/user'), 'user.note')?.toString(), 'hello');
    assert.equal(lgetxattr(path.join(c.rootfs, 'bin/la'), 'user.b64')?.toString(), 'via libarchive');
    assert.equal(r.entries, 19);
    assert.equal(r.size, 1 + 4 + 1 + 1 + 1 + 1 + 4);
    assert.equal(r.treeHash, await hashTree(c.rootfs));
  });

  test('duplicate entries: the later one wins', async () => {
    const c = setup('dup');
    const r = await unpack(c, [
      { name: 'f', data: 'first' },
      { name: 'f', data: 'second', mode: 0o600 },
      { name: 'd/', type: 'dir', mode: 0o700, uid: 1, pax: { 'SCHILY.xattr.user.old': 'x' } },
      { name: 'd/keep', data: 'k' },
      { name: 'd/', type: 'dir', mode: 0o750, uid: 2, mtime: 1500000000, pax: { 'SCHILY.xattr.user.new': 'y' } },
      { name: 'x/', type: 'dir' },
      { name: 'x/child', data: 'gone' },
      { name: 'x', data: 'now a file' },
      { name: 'y', data: 'file first' },
      { name: 'y/', type: 'dir' },
      { name: 'y/inner', data: 'i' },
    ]);
    const p = (s: string) => path.join(c.rootfs, s);
    assert.equal(fs.readFileSync(p('f'), 'utf8'), 'second');
    assert.equal(fs.lstatSync(p('f')).mode & 0o7777, 0o600);
    assert.equal(fs.readFileSync(p('d/keep'), 'utf8'), 'k', 'a directory entry over a directory keeps its contents');
    assert.equal(fs.lstatSync(p('d')).mode & 0o7777, 0o750);
    assert.equal(fs.lstatSync(p('d')).uid, 2);
    assert.equal(fs.lstatSync(p('d')).mtimeMs, 1500000000000);
    assert.equal(lgetxattr(p('d'), 'user.old'), undefined);
    assert.equal(lgetxattr(p('d'), 'user.new')?.toString(), 'y');
    assert.equal(fs.readFileSync(p('x'), 'utf8'), 'now a file');
    assert.equal(fs.readFileSync(p('y/inner'), 'utf8'), 'i');
    assert.equal(r.entries, 6);
    assert.equal(r.size, 6 + 1 + 10 + 1);
    assert.equal(r.treeHash, await hashTree(c.rootfs));
  });

  test('long names: PAX, GNU, ustar prefix; UTF-8', async () => {
    for (const format of ['pax', 'gnu', 'ustar'] as const) {
      const c = setup(`long-${format}`);
      const dir = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
      const long = format === 'ustar' ? `${dir}/file` : `${dir}/${'f'.repeat(150)}`;
      const target = format === 'ustar' ? 'short' : `${'t'.repeat(120)}/x`;
      const r = await unpack(
        c,
        [
          { name: `${dir}/`, type: 'dir' },
          { name: long, data: 'long' },
          { name: `${dir}/link`, type: 'symlink', linkname: target },
          ...(format === 'ustar'
            ? [{ name: 'top', data: 'top' }, { name: `${dir}/hard`, type: 'link' as const, linkname: 'top' }]
            : [{ name: `${dir}/hard`, type: 'link' as const, linkname: long }, { name: 'ünïcödé/ファイル', data: 'utf' }]),
        ],
        { format },
      );
      assert.equal(fs.readFileSync(path.join(c.rootfs, long), 'utf8'), 'long');
      assert.equal(fs.readlinkSync(path.join(c.rootfs, dir, 'link')), target);
      assert.equal(fs.lstatSync(path.join(c.rootfs, dir, 'hard')).nlink, 2);
      if (format !== 'ustar') assert.equal(fs.readFileSync(path.join(c.rootfs, 'ünïcödé/ファイル'), 'utf8'), 'utf');
      assert.equal(r.treeHash, await hashTree(c.rootfs));
    }
  });

  test('a big file is streamed and hashed', async () => {
    const c = setup('big');
    const content = crypto.randomBytes(24 << 20);
    const tarPath = path.join(c.dir, 'layer.tar');
    fs.writeFileSync(path.join(c.dir, 'big.bin'), content);
    const r0 = spawnSync('tar', ['-C', c.dir, '-cf', tarPath, 'big.bin']);
    assert.equal(r0.status, 0);
    fs.rmSync(path.join(c.dir, 'big.bin'));
    const r = await unpackLayer(fs.createReadStream(tarPath, { highWaterMark: 64 * 1024 }), c.rootfs);
    assert.equal(r.size, content.length);
    assert.equal(sha(fs.readFileSync(path.join(c.rootfs, 'big.bin'))), sha(content));
    assert.equal(r.treeHash, await hashTree(c.rootfs));
  });

  test('input arriving in odd-sized pieces', async () => {
    const c = setup('pieces');
    const tarPath = path.join(c.dir, 'layer.tar');
    makeTar(tarPath, [
      { name: 'a/b/c', data: 'x'.repeat(1000) },
      { name: 'a/' + 'n'.repeat(200), data: 'pax', pax: { 'SCHILY.xattr.user.k': 'v' } },
      { name: 'e', data: '' },
    ]);
    const bytes = fs.readFileSync(tarPath);
    const pieces: Buffer[] = [];
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + ((i * 7919) % 700);
      pieces.push(bytes.subarray(i, i + n));
      i += n;
    }
    const r = await unpackLayer(Readable.from(pieces), c.rootfs);
    assert.equal(fs.readFileSync(path.join(c.rootfs, 'a/b/c'), 'utf8'), 'x'.repeat(1000));
    assert.equal(lgetxattr(path.join(c.rootfs, 'a', 'n'.repeat(200)), 'user.k')?.toString(), 'v');
    assert.equal(r.treeHash, await hashTree(c.rootfs));
  });

  test('bad archives: garbage, truncated, empty', async () => {
    let c = setup('garbage');
    await assert.rejects(unpackLayer(Readable.from([crypto.randomBytes(4096)]), c.rootfs, { what: 'layer L' }), (e: unknown) => {
      assert.ok(e instanceof TspodError);
      assert.equal(e.code, ErrorCode.BadFormat);
      assert.match(e.message, /^layer L: not a tar archive/);
      return true;
    });
    c = setup('truncated');
    const tarPath = path.join(c.dir, 'layer.tar');
    makeTar(tarPath, [{ name: 'f', data: 'y'.repeat(5000) }]);
    const whole = fs.readFileSync(tarPath);
    await assert.rejects(unpackLayer(Readable.from([whole.subarray(0, 2048)]), c.rootfs, { what: 'layer L' }), (e: unknown) => {
      assert.ok(e instanceof TspodError);
      assert.equal(e.code, ErrorCode.BadFormat);
      assert.match(e.message, /truncated tar: entry "f" ends after 1536 of its 5000 bytes/);
      return true;
    });
    c = setup('empty');
    const r = await unpackLayer(Readable.from([]), c.rootfs);
    assert.equal(r.entries, 0);
    assert.equal(r.treeHash, await hashTree(c.rootfs));
  });

  test('the input is read to its end and not destroyed on failure', async () => {
    const c = setup('drain');
    const tarPath = path.join(c.dir, 'layer.tar');
    makeTar(tarPath, [{ name: '../x', data: 'x' }, { name: 'pad', data: 'p'.repeat(100000) }]);
    const stream = fs.createReadStream(tarPath, { highWaterMark: 1024 });
    await assert.rejects(unpackLayer(stream, c.rootfs), /refusing unsafe layer/);
    assert.equal(stream.destroyed, false);
    stream.resume();
    await new Promise<void>((resolve) => stream.on('end', () => resolve()));
  });
});

describe('unpack: whiteouts', () => {
  test('OCI whiteouts become overlay whiteouts', async () => {
    const c = setup('whiteouts');
    const r = await unpack(c, [
      { name: 'etc/', type: 'dir' },
      { name: 'etc/.wh.passwd' },
      { name: '.wh.tmp' },
      { name: 'var/.wh..wh..opq' },
      { name: 'var/', type: 'dir', mode: 0o700 },
      { name: 'var/new', data: 'n' },
      { name: 'usr/.wh.lib' },
      { name: 'usr/lib/x', data: 'x' },
      { name: 'opt/f', data: 'f' },
      { name: 'opt/.wh.f' },
      { name: 'srv/.wh.gone' },
      { name: 'srv/gone/', type: 'dir' },
      { name: '.wh..wh.plnk/123', data: 'aufs' },
      { name: '.wh..wh.aufs', data: 'aufs' },
    ]);
    const p = (s: string) => path.join(c.rootfs, s);
    for (const w of ['etc/passwd', 'tmp']) {
      const st = fs.lstatSync(p(w));
      assert.ok(st.isCharacterDevice(), w);
      assert.equal(st.rdev, 0, w);
    }
    assert.equal(lgetxattr(p('var'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(fs.lstatSync(p('var')).mode & 0o7777, 0o700);
    assert.equal(lgetxattr(p('usr/lib'), 'trusted.overlay.opaque')?.toString(), 'y', 'deleted then recreated: opaque');
    assert.equal(lgetxattr(p('srv/gone'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(lgetxattr(p('etc'), 'trusted.overlay.opaque'), undefined);
    assert.equal(fs.readFileSync(p('opt/f'), 'utf8'), 'f', "a whiteout does not delete its own layer's file");
    const all = fs.readdirSync(c.rootfs, { recursive: true }) as string[];
    assert.ok(!all.some((n) => path.basename(n).startsWith('.wh.')), `no .wh. names left: ${all.join(' ')}`);
    assert.ok(r.warnings.some((w) => w.includes('AUFS')));
    assert.equal(r.treeHash, await hashTree(c.rootfs));
  });

  test('opaque marker at the layer root', async () => {
    const c = setup('root-opaque');
    const r = await unpack(c, [{ name: '.wh..wh..opq' }, { name: 'f', data: 'x' }]);
    assert.equal(lgetxattr(c.rootfs, 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(r.treeHash, await hashTree(c.rootfs));
  });
});

describe('unpack: hardlinks into lower layers', () => {
  test('a target only in a lower layer is copied in', async () => {
    const lower = setup('lower');
    await unpack(lower, [{ name: 'bin/busybox', data: 'BUSYBOX', mode: 0o755, uid: 3, pax: { 'SCHILY.xattr.user.x': '1' } }]);
    const c = setup('upper');
    const r = await unpack(c, [{ name: 'bin/sh', type: 'link', linkname: 'bin/busybox' }], { lowerRootfs: [lower.rootfs] });
    const st = fs.lstatSync(path.join(c.rootfs, 'bin/sh'));
    assert.ok(st.isFile());
    assert.equal(st.mode & 0o7777, 0o755);
    assert.equal(st.uid, 3);
    assert.equal(fs.readFileSync(path.join(c.rootfs, 'bin/sh'), 'utf8'), 'BUSYBOX');
    assert.equal(lgetxattr(path.join(c.rootfs, 'bin/sh'), 'user.x')?.toString(), '1');
    assert.ok(r.warnings.some((w) => w.includes('lower layer')));
    assert.equal(r.treeHash, await hashTree(c.rootfs));
    assert.equal(fs.readFileSync(path.join(lower.rootfs, 'bin/busybox'), 'utf8'), 'BUSYBOX', 'lower layer not written');
  });

  test('a target deleted by a nearer layer, or missing, is an error', async () => {
    const lower = setup('lower2');
    await unpack(lower, [{ name: 'bin/busybox', data: 'BUSYBOX' }]);
    const middle = setup('middle');
    await unpack(middle, [{ name: 'bin/.wh.busybox' }]);
    const c = setup('upper2');
    await assertRefused(c, [{ name: 'bin/sh', type: 'link', linkname: 'bin/busybox' }], ErrorCode.BadFormat, /hardlink "bin\/sh" target "bin\/busybox" does not exist/, {
      lowerRootfs: [middle.rootfs, lower.rootfs],
    });
    const c2 = setup('upper3');
    await assertRefused(c2, [{ name: 'sh', type: 'link', linkname: 'nothere' }], ErrorCode.BadFormat, /does not exist in this layer/);
  });
});

describe('unpack: hardlinks into lower layers follow overlay rules (native/overlay.ts)', () => {
  test("a nearer lower layer's directory hides a deeper layer's symlink of that name: the target is found through the directory", async () => {
    const deep = setup('ov-deep');
    await unpack(deep, [{ name: 'a', type: 'symlink', linkname: deep.outside }]);
    const near = setup('ov-near');
    await unpack(near, [{ name: 'a/', type: 'dir' }, { name: 'a/f', data: 'NEAR' }]);
    const c = setup('ov-upper');
    await unpack(c, [{ name: 'h', type: 'link', linkname: 'a/f' }], { lowerRootfs: [near.rootfs, deep.rootfs] });
    assert.equal(fs.readFileSync(path.join(c.rootfs, 'h'), 'utf8'), 'NEAR');
    assertOutsideUntouched(deep);
  });

  test("a nearer lower layer whose root is opaque hides the deeper layers' files", async () => {
    const deep = setup('ov-deep2');
    await unpack(deep, [{ name: 'd/f', data: 'DEEP' }]);
    const near = setup('ov-near2');
    await unpack(near, [{ name: '.wh..wh..opq' }, { name: 'other', data: 'x' }]);
    const c = setup('ov-upper2');
    await assertRefused(c, [{ name: 'h', type: 'link', linkname: 'd/f' }], ErrorCode.BadFormat, /does not exist in this layer or the layers below it/, {
      lowerRootfs: [near.rootfs, deep.rootfs],
    });
    // Without the opaque layer, the same target is found and copied.
    const c2 = setup('ov-upper3');
    await unpack(c2, [{ name: 'h', type: 'link', linkname: 'd/f' }], { lowerRootfs: [deep.rootfs] });
    assert.equal(fs.readFileSync(path.join(c2.rootfs, 'h'), 'utf8'), 'DEEP');
  });
});

describe('tree hash', () => {
  test('hashTree equals the unpack hash and notices changes', async () => {
    const c = setup('treehash');
    const r = await unpack(c, [
      { name: 'a/f', data: 'content' },
      { name: 'a/g', data: 'other', mode: 0o600 },
      { name: 'l', type: 'symlink', linkname: 'a/f' },
      { name: '.wh.gone' },
    ]);
    const p = (s: string) => path.join(c.rootfs, s);
    assert.equal(await hashTree(c.rootfs), r.treeHash);
    fs.utimesSync(p('a/f'), 1, 1);
    assert.equal(await hashTree(c.rootfs), r.treeHash, 'times are not part of the hash');

    const changes: Array<[string, () => void, () => void]> = [
      ['content', () => fs.writeFileSync(p('a/f'), 'c0ntent'), () => fs.writeFileSync(p('a/f'), 'content')],
      ['mode', () => fs.chmodSync(p('a/g'), 0o644), () => fs.chmodSync(p('a/g'), 0o600)],
      ['owner', () => fs.lchownSync(p('l'), 1, 1), () => fs.lchownSync(p('l'), 0, 0)],
      ['new file', () => fs.writeFileSync(p('a/new'), ''), () => fs.rmSync(p('a/new'))],
      ['xattr', () => lsetxattr(p('a'), 'user.k', Buffer.from('v')), () => lremovexattr(p('a'), 'user.k')],
      ['symlink target', () => (fs.rmSync(p('l')), fs.symlinkSync('a/g', p('l'))), () => (fs.rmSync(p('l')), fs.symlinkSync('a/f', p('l')))],
      ['whiteout removed', () => fs.rmSync(p('gone')), () => spawnSync('mknod', [p('gone'), 'c', '0', '0'])],
    ];
    for (const [what, change, undo] of changes) {
      change();
      assert.notEqual(await hashTree(c.rootfs), r.treeHash, `${what} changes the hash`);
      undo();
      fs.chmodSync(p('gone'), 0);
      assert.equal(await hashTree(c.rootfs), r.treeHash, `undoing ${what} restores it`);
    }
  });
});
