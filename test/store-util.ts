// Shared pieces of the store integration tests (store-*.test.ts): store
// snapshots, one-line error checks, a tspod child we can SIGKILL, the registry's
// request log, a tampering/slow HTTP proxy on 127.0.0.1, and hand-made images
// (python3 tarfile) for the cases skopeo and umoci would never produce.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  TSPOD_BIN,
  REPO_ROOT,
  onExit,
  listTree,
  diffTrees,
  formatTree,
  makeTempDir,
  describeResult,
  type AfterHost,
  type DataDir,
  type Registry,
  type RunResult,
  type Tree,
} from './harness/index.js';

// ------------------------------------------------------------ cleanup for suites

/**
 * An AfterHost for resources made in a suite's before hook: register
 * `after(() => host.run())` in the describe body, pass `host` to the harness.
 * Cleanups run newest first, each even if an earlier one fails.
 */
export function suiteHost(): AfterHost & { run(): Promise<void> } {
  const fns: Array<() => unknown> = [];
  return {
    after: (fn) => {
      fns.push(fn);
    },
    run: async () => {
      const errors: unknown[] = [];
      for (const fn of fns.reverse()) {
        try {
          await fn();
        } catch (e) {
          errors.push(e);
        }
      }
      fns.length = 0;
      if (errors.length) throw errors[0];
    },
  };
}

/** A scratch directory (under the run's root) removed by `t`'s after hook. */
export function tempDir(t: AfterHost, name: string): string {
  const dir = makeTempDir(name);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ------------------------------------------------------------ the store on disk

/** Lock files are the only thing a failed command may leave changed. */
function isLockPath(p: string): boolean {
  return p === '/cas/locks' || p.startsWith('/cas/locks/') || p.endsWith('.lock');
}

/** Everything under the data dir (types, modes, owners, contents), lock files left out. */
export function snapshot(dir: string): Tree {
  if (!fs.existsSync(dir)) return new Map();
  return listTree(dir, { ignore: isLockPath, hardlinks: false });
}

/** Fails with the differences unless the data dir is as it was in `before`. */
export function assertUnchanged(before: Tree, dir: string, what: string): void {
  const diffs = diffTrees(before, snapshot(dir), { labels: ['before', 'after'] });
  assert.deepEqual(diffs, [], `${what}: the store changed:\n  ${diffs.slice(0, 30).join('\n  ')}`);
}

export function layerIds(dir: string): string[] {
  const d = path.join(dir, 'cas', 'layers');
  return fs.existsSync(d) ? fs.readdirSync(d).sort() : [];
}

/** Layer directories that exist but are not complete (no info.json): must never be there. */
export function incompleteLayers(dir: string): string[] {
  return layerIds(dir).filter((l) => !fs.existsSync(path.join(dir, 'cas', 'layers', l, 'info.json')));
}

export function imageIds(dir: string): string[] {
  const d = path.join(dir, 'cas', 'images');
  return fs.existsSync(d) ? fs.readdirSync(d).sort() : [];
}

/** Scratch directories left in cas/tmp (none once every command has ended). */
export function scratchLeft(dir: string): string[] {
  const d = path.join(dir, 'cas', 'tmp');
  return fs.existsSync(d) ? fs.readdirSync(d) : [];
}

// ------------------------------------------------------------ results

/** Exit 0, or fail with the whole result. */
export function ok(r: RunResult): RunResult {
  assert.equal(r.code, 0, describeResult(r));
  return r;
}

/**
 * A failure as docs/architecture.md ("Errors and exit codes") wants it: exit `code` (254), nothing on stdout,
 * and exactly one line on stderr, `tspod: …`, matching `re`.
 */
export function oneLineError(r: RunResult, re: RegExp, code = 254): string {
  assert.equal(r.code, code, describeResult(r));
  assert.equal(r.stdout, '', `nothing on stdout\n${describeResult(r)}`);
  const lines = r.stderr.split('\n');
  assert.equal(lines.pop(), '', `stderr ends in a newline\n${describeResult(r)}`);
  assert.equal(lines.length, 1, `one line on stderr\n${describeResult(r)}`);
  const line = lines[0]!;
  assert.match(line, /^tspod: /, describeResult(r));
  assert.match(line, re, describeResult(r));
  assert.doesNotMatch(line, /\bat .*\.(m?js|ts):\d+/, 'no stack trace');
  return line;
}

/** rkt's fetch output: `sha256-`/`sha512-` and 32 hex digits (64 with --full). */
export function fetchedId(r: RunResult, full = false): string {
  ok(r);
  const m = (full ? /^(sha256|sha512)-[0-9a-f]{64}\n$/ : /^(sha256|sha512)-[0-9a-f]{32}\n$/).exec(r.stdout);
  assert.ok(m, `fetch prints one ${full ? 'full' : 'short'} image ID\n${describeResult(r)}`);
  return r.stdout.trim();
}

// ------------------------------------------------------------ a tspod we can kill

export interface TspodChild {
  child: ChildProcess;
  pid: number;
  /** Resolves when the process has exited, with what it printed. */
  done: Promise<RunResult>;
}

function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST') || k === 'NODE_CHANNEL_FD') delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const nodeDir = path.dirname(process.execPath);
  const p = env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
  if (!p.split(':').includes(nodeDir)) env.PATH = `${p}:${nodeDir}`;
  return env;
}

/** Starts `tspod --dir=DIR ARGS…` and returns at once (for SIGKILL and concurrency tests). */
export function spawnTspod(dir: string, args: readonly string[], env: Record<string, string | undefined> = {}): TspodChild {
  const argv = [`--dir=${dir}`, ...args];
  const child = spawn(TSPOD_BIN, argv, { cwd: REPO_ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  const unregister = onExit(() => child.kill('SIGKILL'));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      unregister();
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      unregister();
      resolve({
        code: code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 0),
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut: false,
        argv: [TSPOD_BIN, ...argv],
      });
    });
  });
  return { child, pid: child.pid!, done };
}

/** Polls `cond` (cheap, synchronous) until it holds; fails after `ms` with `what`. */
export async function waitFor(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ------------------------------------------------------------ the registry's request log

export interface LoggedRequest {
  method: string;
  uri: string;
  status: number;
  userAgent: string;
}

/** Requests the registry logged (its "response completed" lines), tspod's only by default. */
export function registryRequests(reg: Registry, onlyTspod = true): LoggedRequest[] {
  const out: LoggedRequest[] = [];
  for (const line of fs.readFileSync(reg.logPath, 'utf8').split('\n')) {
    if (!line.includes('msg="response completed"')) continue;
    const field = (name: string): string => {
      const m = new RegExp(`${name.replace(/\./g, '\\.')}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`).exec(line);
      if (!m) return '';
      return m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1]!;
    };
    const req = { method: field('http.request.method'), uri: field('http.request.uri'), status: Number(field('http.response.status')), userAgent: field('http.request.useragent') };
    if (onlyTspod && !req.userAgent.startsWith('tspod/')) continue;
    out.push(req);
  }
  return out;
}

/**
 * registryRequests once the log has settled: the registry writes a request's line
 * after its response went out, so a client that has just exited may not be in it
 * yet. Reads until two reads 150 ms apart agree.
 */
export async function registryLog(reg: Registry, onlyTspod = true): Promise<LoggedRequest[]> {
  let last = registryRequests(reg, false).length;
  for (;;) {
    await new Promise((r) => setTimeout(r, 150));
    const now = registryRequests(reg, false).length;
    if (now === last) return registryRequests(reg, onlyTspod);
    last = now;
  }
}

/** The blob digests tspod GETs from the registry (in log order). */
export function blobGets(reqs: LoggedRequest[]): string[] {
  return reqs.filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.uri)).map((r) => r.uri.slice(r.uri.lastIndexOf('/') + 1));
}

// ------------------------------------------------------------ a proxy in front of the registry

export interface ProxyRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface UpstreamResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * What the proxy sends instead of the registry's answer. Every field is optional:
 * status, headers and body replace the upstream ones (Content-Length follows the
 * body unless `keepLength`); `cutAfter` sends that many body bytes and then
 * destroys the connection; `hold` sends headers and `cutAfter` bytes (0 if unset)
 * and then keeps the connection open without sending more until the proxy is
 * closed or release() is called; `chunk`/`delayMs` trickle the body.
 */
export interface ProxyReply {
  status?: number;
  headers?: Record<string, string>;
  body?: Buffer;
  keepLength?: boolean;
  cutAfter?: number;
  hold?: boolean;
  chunk?: number;
  delayMs?: number;
}

export type ProxyRule = (req: ProxyRequest, upstream: UpstreamResponse) => ProxyReply | undefined;

export interface Proxy {
  url: string;
  /** `127.0.0.1:PORT`, for docker:// references. */
  host: string;
  /** Every request, in order, with what the proxy did. */
  log: Array<ProxyRequest & { status: number; action: string }>;
  rule: ProxyRule | undefined;
  /** Resolves when a request whose path matches `re` has been answered (headers sent). */
  seen(re: RegExp): Promise<void>;
  /** Resolves when the whole body of a response to a path matching `re` has been sent. */
  finished(re: RegExp): Promise<void>;
  /** Lets held responses finish (sends the rest of their bodies). */
  release(): void;
  close(): Promise<void>;
}

export async function startProxy(upstream: string, t: AfterHost, rule?: ProxyRule): Promise<Proxy> {
  const target = new URL(upstream);
  const log: Proxy['log'] = [];
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  const finishWaiters: Array<{ re: RegExp; resolve: () => void }> = [];
  const notifyFinished = (url: string): void => {
    for (const w of [...finishWaiters]) {
      if (w.re.test(url)) {
        finishWaiters.splice(finishWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const held = new Set<() => void>();
  const sockets = new Set<net.Socket>();
  const notify = (url: string): void => {
    for (const w of [...waiters]) {
      if (w.re.test(url)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };

  const fetchUpstream = (req: http.IncomingMessage, body: Buffer): Promise<UpstreamResponse> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: target.host };
      const up = http.request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      up.on('error', reject);
      up.end(body);
    });

  const server = http.createServer((req, res) => {
    const bodyChunks: Buffer[] = [];
    req.on('data', (c: Buffer) => bodyChunks.push(c));
    req.on('end', () => {
      void (async () => {
        const preq: ProxyRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
        let upstreamRes: UpstreamResponse;
        try {
          upstreamRes = await fetchUpstream(req, Buffer.concat(bodyChunks));
        } catch (e) {
          log.push({ ...preq, status: 502, action: `upstream failed: ${String(e)}` });
          res.writeHead(502).end();
          return;
        }
        const reply = proxy.rule?.(preq, upstreamRes) ?? {};
        const status = reply.status ?? upstreamRes.status;
        const body = reply.body ?? upstreamRes.body;
        const headers: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(upstreamRes.headers)) {
          if (v === undefined || ['connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(k)) continue;
          headers[k] = v;
        }
        for (const [k, v] of Object.entries(reply.headers ?? {})) {
          if (v === '') delete headers[k.toLowerCase()];
          else headers[k.toLowerCase()] = v;
        }
        const length = reply.keepLength || reply.cutAfter !== undefined || reply.hold ? upstreamRes.body.length : body.length;
        headers['content-length'] = String(length);
        const actions = [reply.body ? 'body replaced' : '', reply.status ? `status ${reply.status}` : '', reply.cutAfter !== undefined ? `cut after ${reply.cutAfter}` : '', reply.hold ? 'held' : '']
          .filter(Boolean)
          .join(', ');
        log.push({ ...preq, status, action: actions || 'passed' });
        res.writeHead(status, headers);
        res.flushHeaders();
        const send = async (data: Buffer): Promise<void> => {
          const chunk = reply.chunk ?? data.length;
          for (let off = 0; off < data.length; off += chunk) {
            if (res.destroyed) return;
            res.write(data.subarray(off, off + chunk));
            if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
          }
        };
        if (reply.hold) {
          const first = body.subarray(0, reply.cutAfter ?? 0);
          await send(first);
          notify(preq.url);
          await new Promise<void>((resolve) => {
            const go = () => {
              held.delete(go);
              resolve();
            };
            held.add(go);
            res.on('close', go);
          });
          if (!res.destroyed) {
            await send(body.subarray(first.length));
            res.end();
          }
          return;
        }
        notify(preq.url);
        if (reply.cutAfter !== undefined) {
          await send(body.subarray(0, reply.cutAfter));
          // Let the bytes go out, then drop the connection mid-body.
          res.socket?.end();
          setTimeout(() => res.destroy(), 50).unref();
          return;
        }
        await send(body);
        res.end(() => notifyFinished(preq.url));
      })();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  let closed = false;
  const unregister = onExit(() => {
    for (const s of sockets) s.destroy();
  });
  const proxy: Proxy = {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    log,
    rule,
    seen: (re) => new Promise<void>((resolve) => waiters.push({ re, resolve })),
    finished: (re) => new Promise<void>((resolve) => finishWaiters.push({ re, resolve })),
    release: () => {
      for (const go of [...held]) go();
    },
    close: async () => {
      if (closed) return;
      closed = true;
      for (const go of [...held]) go();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      unregister();
    },
  };
  t.after(() => proxy.close());
  return proxy;
}

/** A server on 127.0.0.1 that answers every request with `status` (a registry that refuses). */
export async function startRefusingServer(t: AfterHost, status = 500): Promise<{ host: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'the test server refuses everything' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  return { host: `127.0.0.1:${port}`, close };
}

/** A static file server on 127.0.0.1: GET /<name> serves files[name]; a request log. */
export async function startFileServer(t: AfterHost, files: Record<string, string>): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const file = files[(req.url ?? '/').slice(1)];
    if (req.method !== 'GET' || !file) {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(fs.statSync(file).size) });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  return { url: `http://127.0.0.1:${port}`, requests, close };
}

// ------------------------------------------------------------ digests

export function sha256(b: Buffer | string): string {
  return `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
}

/** A copy of `b` with one byte changed (at `at`, default the middle). */
export function flipByte(b: Buffer, at = Math.floor(b.length / 2)): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x01;
  return c;
}

// ------------------------------------------------------------ hand-made images (python3)

export function python(script: string, args: string[] = []): string {
  const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/**
 * One tar entry for makeLayout/makeAci. type: file (default), dir, symlink,
 * hardlink; `link` is the symlink or hardlink target.
 */
export interface TarEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink';
  data?: string;
  link?: string;
  mode?: number;
}

const PY_TAR = `
import io, tarfile
def make_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e['name'])
            ti.uid = ti.gid = 0
            ti.mtime = 1700000000
            t = e.get('type', 'file')
            data = e.get('data', '').encode()
            if t == 'dir':
                ti.type = tarfile.DIRTYPE; ti.mode = e.get('mode', 0o755)
                tf.addfile(ti)
            elif t == 'symlink':
                ti.type = tarfile.SYMTYPE; ti.linkname = e['link']; ti.mode = 0o777
                tf.addfile(ti)
            elif t == 'hardlink':
                ti.type = tarfile.LNKTYPE; ti.linkname = e['link']; ti.mode = e.get('mode', 0o644)
                tf.addfile(ti)
            else:
                ti.mode = e.get('mode', 0o644); ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()
`;

/**
 * Writes an OCI image layout at `dir` with one image tagged `tag`: one gzip layer
 * per entry list, a config (linux/amd64 unless `config` says otherwise).
 * python3's tarfile keeps names exactly as given (`../x`, `/abs`).
 */
export function makeLayout(dir: string, tag: string, layers: TarEntry[][], config: Record<string, unknown> = {}): { manifestDigest: string } {
  const out = python(
    `${PY_TAR}
import gzip, hashlib, json, os, sys
d, tag, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
os.makedirs(os.path.join(d, 'blobs', 'sha256'), exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(os.path.join(d, 'blobs', 'sha256', h), 'wb').write(b)
    return 'sha256:' + h, len(b)
layers, diff_ids = [], []
for entries in spec['layers']:
    raw = make_tar(entries)
    diff_ids.append('sha256:' + hashlib.sha256(raw).hexdigest())
    gz = gzip.compress(raw, mtime=0)
    dg, n = put(gz)
    layers.append({'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': dg, 'size': n})
cfg = {'architecture': 'amd64', 'os': 'linux', 'config': {'Cmd': ['/bin/sh']}}
cfg.update(spec['config'])
cfg['rootfs'] = {'type': 'layers', 'diff_ids': diff_ids}
cdg, cn = put(json.dumps(cfg).encode())
man = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
       'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': cdg, 'size': cn}, 'layers': layers}
mdg, mn = put(json.dumps(man).encode())
open(os.path.join(d, 'oci-layout'), 'w').write('{"imageLayoutVersion":"1.0.0"}')
ip = os.path.join(d, 'index.json')
idx = json.load(open(ip)) if os.path.exists(ip) else {'schemaVersion': 2, 'manifests': []}
idx['manifests'] = [m for m in idx['manifests'] if m.get('annotations', {}).get('org.opencontainers.image.ref.name') != tag]
idx['manifests'].append({'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': mdg, 'size': mn,
                         'annotations': {'org.opencontainers.image.ref.name': tag}})
json.dump(idx, open(ip, 'w'))
print(mdg)
`,
    [dir, tag, JSON.stringify({ layers, config })],
  );
  return { manifestDigest: out.trim() };
}

/** Writes an ACI (uncompressed tar) from entries; names are used as given. */
export function makeAci(file: string, entries: TarEntry[]): void {
  python(
    `${PY_TAR}
import json, sys
open(sys.argv[1], 'wb').write(make_tar(json.loads(sys.argv[2])))
`,
    [file, JSON.stringify(entries)],
  );
}

/** A minimal valid appc image manifest for makeAci. */
export function aciManifest(name: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    acKind: 'ImageManifest',
    acVersion: '0.8.11',
    name,
    labels: [
      { name: 'os', value: 'linux' },
      { name: 'arch', value: 'amd64' },
    ],
    app: { exec: ['/bin/sh'], user: '0', group: '0' },
    ...extra,
  });
}

// ------------------------------------------------------------ canaries

export interface Canary {
  dir: string;
  file: string;
  /** Fails unless the canary directory holds exactly the canary file, unchanged. */
  check(what: string): void;
}

/** A directory outside every store, with one file in it, to catch escaping writes. */
export function makeCanary(t: AfterHost): Canary {
  const dir = makeTempDir('canary');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'canary');
  fs.writeFileSync(file, 'canary: untouched\n', { mode: 0o640 });
  fs.chmodSync(file, 0o640);
  const before = formatTree(listTree(dir, { mtime: 'all', root: false }));
  return {
    dir,
    file,
    check: (what) => {
      const after = formatTree(listTree(dir, { mtime: 'all', root: false }));
      assert.equal(after, before, `${what}: something outside the store changed (the canary directory)`);
      const st = fs.statSync(file);
      assert.equal(st.nlink, 1, `${what}: the canary file got a hardlink`);
    },
  };
}

export type { DataDir, Registry, RunResult };
