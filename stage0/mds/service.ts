// `tspod metadata-service`: the appc metadata service (public.ts) on TCP, and
// the registration endpoint (protocol.ts) on a unix socket that only root can
// use. One resident process for the whole host; pods that do not register never
// need it. Runs until SIGTERM/SIGINT, then removes its socket.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { TspodError, ErrorCode } from '../../native/errors.js';
import { log } from '../../native/log.js';
import { boundSocket } from './listen.js';
import { type MdsPodRecord, UUID_RE } from './protocol.js';
import { publicResponse } from './public.js';
import { PodRegistry } from './registry.js';

export interface ServiceOptions {
  port: number;
  addresses: string[];
  socketPath: string;
}

/** POST forms are small; registrations carry manifests. */
const MAX_FORM = 64 * 1024;
const MAX_RECORD = 16 * 1024 * 1024;

/** The request body, or undefined when it is over `max` bytes (the rest is read and dropped, so that the 413 reaches the client). */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    req.on('end', () => resolve(size <= max ? Buffer.concat(chunks) : undefined));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=us-ascii' }): void {
  res.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

function publicServer(registry: PodRegistry, hmacKey: Buffer): http.Server {
  return http.createServer((req, res) => {
    void (async () => {
      const body = req.method === 'POST' ? await readBody(req, MAX_FORM) : Buffer.alloc(0);
      if (!body) return send(res, 413, 'Payload Too Large\n');
      const r = publicResponse(registry, hmacKey, { method: req.method ?? '', url: req.url ?? '/', contentType: req.headers['content-type'], body });
      log().debug(`${req.method} ${r.status === 403 ? '/(token)/…' : (req.url ?? '').replace(/^\/[^/]+/, '/(token)')} ${r.status}`);
      send(res, r.status, r.body, r.headers);
    })().catch(() => res.destroy());
  });
}

function checkRecord(v: unknown): v is MdsPodRecord {
  const r = v as MdsPodRecord;
  if (!r || typeof r !== 'object' || !r.manifest || !Array.isArray(r.manifest.apps) || !r.images || typeof r.images !== 'object') return false;
  return r.manifest.apps.every((a) => a && typeof a.name === 'string' && typeof a.image?.id === 'string' && r.images[a.name] && typeof r.images[a.name] === 'object');
}

function registrationServer(registry: PodRegistry, port: number): http.Server {
  return http.createServer((req, res) => {
    void (async () => {
      const url = req.url ?? '/';
      if (url === '/' && req.method === 'GET') return send(res, 200, 'tspod metadata service\n');
      const m = /^\/pods\/([^/?]+)$/.exec(url);
      if (!m || !UUID_RE.test(m[1])) return send(res, 404, 'Not Found\n');
      const uuid = m[1];
      if (req.method === 'DELETE') {
        const known = registry.remove(uuid);
        if (known) log().info(`unregistered pod ${uuid}`);
        return send(res, known ? 200 : 404, known ? '' : 'pod not registered\n');
      }
      if (req.method !== 'PUT') return send(res, 405, 'Method Not Allowed\n', { 'Content-Type': 'text/plain; charset=us-ascii', Allow: 'PUT, DELETE' });
      const body = await readBody(req, MAX_RECORD);
      if (!body) return send(res, 413, 'Payload Too Large\n');
      let record: unknown;
      try {
        record = JSON.parse(body.toString('utf8'));
      } catch {
        return send(res, 400, 'the body is not JSON\n');
      }
      if (!checkRecord(record)) return send(res, 400, 'the body is not a pod record (manifest, images)\n');
      const token = registry.add(uuid, record);
      log().info(`registered pod ${uuid} (${registry.size} registered)`);
      return send(res, 200, JSON.stringify({ token, port }), { 'Content-Type': 'application/json' });
    })().catch(() => res.destroy());
  });
}

/** true if something accepts connections on the unix socket at file. */
function socketAnswers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(file);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Makes the socket's directory, and removes a stale socket left by a service that died. */
async function prepareSocketPath(file: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new TspodError(ErrorCode.Conflict, `${file} exists and is not a socket`, { hint: 'remove it' });
  if (await socketAnswers(file)) throw new TspodError(ErrorCode.Conflict, `a metadata service is already running (${file})`);
  fs.rmSync(file, { force: true });
}

function listen(server: net.Server, how: net.ListenOptions | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(how, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Runs the service until SIGTERM or SIGINT; resolves with the exit code. */
export async function runMetadataService(opts: ServiceOptions): Promise<number> {
  const registry = new PodRegistry();
  const hmacKey = randomBytes(64);
  await prepareSocketPath(opts.socketPath);
  const fds = opts.addresses.map((a) => boundSocket(a, opts.port));
  const servers: http.Server[] = [];
  const reg = registrationServer(registry, opts.port);
  const mask = process.umask(0o177);
  try {
    await listen(reg, { path: opts.socketPath });
  } finally {
    process.umask(mask);
  }
  const ino = fs.lstatSync(opts.socketPath).ino;
  fs.chmodSync(opts.socketPath, 0o600);
  servers.push(reg);
  for (const fd of fds) {
    const s = publicServer(registry, hmacKey);
    await listen(s, { fd });
    servers.push(s);
  }
  const where = opts.addresses.map((a) => (a.includes(':') ? `[${a}]:${opts.port}` : `${a}:${opts.port}`)).join(', ');
  process.stdout.write(`metadata service listening on ${where}; registrations on ${opts.socketPath}\n`);
  return new Promise((resolve) => {
    const stop = (sig: string) => {
      log().info(`${sig}: metadata service exiting`);
      try {
        if (fs.lstatSync(opts.socketPath).ino === ino) fs.rmSync(opts.socketPath);
      } catch {
        /* already gone */
      }
      for (const s of servers) {
        s.close();
        s.closeAllConnections();
      }
      resolve(0);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
