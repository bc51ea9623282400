// A real OCI distribution registry for the tests: Debian's docker-registry
// (distribution v2), on 127.0.0.1 only, with a generated config and storage in
// this run's scratch space. Optional: htpasswd basic auth, token (Bearer) auth
// with a small token server written here, TLS with a self-signed certificate.
// Images get in with skopeo, never with tspod's code.
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { makeTempDir } from './paths.js';
import { onExit, type AfterHost } from './cleanup.js';
import { fixture, SKOPEO_POLICY, ensureFixtures, type Fixture } from './fixtures.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface RegistryOptions {
  /** 'htpasswd': HTTP basic auth; 'token': Bearer tokens from a token server on 127.0.0.1. */
  auth?: RegistryAuth;
  /** Users for htpasswd or token auth (default { tspod: 'tspod-secret' }). */
  users?: Record<string, string>;
  /** Token auth: hand out pull-only tokens to requests without credentials (default false). */
  anonymousPull?: boolean;
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1. */
  tls?: boolean;
  /** Register stop() with this test (or suite) context's after hook. */
  t?: AfterHost;
  /** Keep the registry's directory after stop (for debugging). */
  keep?: boolean;
}

export interface TokenRequest {
  account?: string;
  scopes: string[];
  service?: string;
  /** 'granted' or why not. */
  outcome: string;
}

export interface TokenServer {
  /** The realm URL the registry sends clients to. */
  url: string;
  service: string;
  issuer: string;
  /** Every token request so far, in order. */
  requests: TokenRequest[];
  close(): Promise<void>;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text(): string;
  json<T = unknown>(): T;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Answer the registry's 401 with the configured credentials (default true). */
  auth?: boolean;
}

export interface Registry {
  /** `http://127.0.0.1:PORT` or `https://…`. */
  url: string;
  /** `127.0.0.1:PORT`: what goes after docker:// */
  host: string;
  port: number;
  scheme: 'http' | 'https';
  auth: RegistryAuth;
  /** The first configured user, for --creds style flags; absent without auth. */
  credentials?: { username: string; password: string };
  users: Record<string, string>;
  /** The self-signed certificate (PEM path) when tls is on. */
  certPath?: string;
  token?: TokenServer;
  /** The registry's scratch directory (config.yml, storage/, registry.log). */
  dir: string;
  logPath: string;
  pid: number;
  /** `docker://HOST/REPO[:TAG]` for a repository reference like `busybox:latest`. */
  ref(repoRef: string): string;
  /** An HTTP request to the registry; answers auth challenges unless auth: false. */
  request(pathOrUrl: string, opts?: RequestOptions): Promise<HttpResult>;
  /** Pushes with skopeo; dest is `repo[:tag]`. Returns the docker:// reference. */
  push(skopeoSource: string, dest: string, opts?: PushOptions): Promise<string>;
  /** Pushes a fixture (by name) the way its definition says. Returns the docker:// reference. */
  pushFixture(name: string, dest?: string): Promise<string>;
  stop(): Promise<void>;
}

export interface PushOptions {
  format?: 'oci' | 'v2s2';
  all?: boolean;
  /** Override the registry's credentials ('none' to push anonymously). */
  creds?: { username: string; password: string } | 'none';
}

// ---------------------------------------------------------------- helpers

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { input: opts.input, cwd: opts.cwd, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A self-signed certificate and key (PEM files in dir), made with openssl. */
export function makeSelfSignedCert(dir: string, name: string, cn: string, san?: string): { certPath: string; keyPath: string } {
  const certPath = path.join(dir, `${name}.crt`);
  const keyPath = path.join(dir, `${name}.key`);
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '7', '-keyout', keyPath, '-out', certPath, '-subj', `/CN=${cn}`];
  if (san) args.push('-addext', `subjectAltName=${san}`);
  run('openssl', args);
  return { certPath, keyPath };
}

/**
 * One htpasswd line with a bcrypt hash (the only kind the registry accepts).
 * Cost 4, the minimum: the registry checks the hash on every request.
 */
export function htpasswdLine(user: string, password: string): string {
  const r = spawnSync('htpasswd', ['-nbBC', '4', user, password], { encoding: 'utf8' });
  if (!r.error && r.status === 0) return r.stdout.trim();
  // Fallback: python3's crypt module (glibc/libxcrypt bcrypt), where it still exists.
  const py = spawnSync(
    'python3',
    ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', password],
    { encoding: 'utf8' },
  );
  const hash = py.stdout?.trim() ?? '';
  if (py.status === 0 && hash.startsWith('$2')) return `${user}:${hash}`;
  throw new Error('cannot make a bcrypt htpasswd entry: install apache2-utils (htpasswd) — make deps does');
}

function b64url(buf: Buffer | string): string {
  return Buffer.from(buf).toString('base64url');
}

function httpRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; ca?: string }): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      { method: opts.method ?? 'GET', headers: opts.headers, ca: opts.ca, timeout: 30_000, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: () => body.toString('utf8'),
            json: <T>() => JSON.parse(body.toString('utf8')) as T,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Parses `Bearer realm="…",service="…",scope="…"` (or Basic …). */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  const params: Record<string, string> = {};
  if (!m) return { scheme: '', params };
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme: m[1]!.toLowerCase(), params };
}

// ---------------------------------------------------------------- token server

/** A minimal token server for the registry's `auth.token`: RS256 JWTs with an x5c header. */
async function startTokenServer(dir: string, users: Record<string, string>, anonymousPull: boolean): Promise<TokenServer & { certPath: string }> {
  const { certPath, keyPath } = makeSelfSignedCert(dir, 'token-signer', 'tspod-test-token-signer');
  const key = crypto.createPrivateKey(fs.readFileSync(keyPath));
  const certDer = new crypto.X509Certificate(fs.readFileSync(certPath)).raw.toString('base64');
  const service = 'tspod-test-registry';
  const issuer = 'tspod-test-token-issuer';
  const requests: TokenRequest[] = [];

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const scopes = u.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const rec: TokenRequest = { scopes, service: u.searchParams.get('service') ?? undefined, outcome: '' };
    requests.push(rec);
    const deny = (why: string): void => {
      rec.outcome = why;
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="tspod-test-token"' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: why }] }));
    };
    if (u.pathname !== '/token') {
      rec.outcome = 'not found';
      res.writeHead(404).end();
      return;
    }
    let account: string | undefined;
    const authz = req.headers.authorization;
    if (authz?.startsWith('Basic ')) {
      const decoded = Buffer.from(authz.slice(6), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      const user = decoded.slice(0, i);
      if (i < 0 || users[user] === undefined || users[user] !== decoded.slice(i + 1)) return deny('bad credentials');
      account = user;
    } else if (!anonymousPull) {
      return deny('credentials required');
    }
    rec.account = account;
    const access = scopes.map((s) => {
      const parts = s.split(':');
      const type = parts[0] ?? '';
      const actionsPart = parts.length >= 3 ? parts[parts.length - 1]! : '';
      const name = parts.slice(1, parts.length >= 3 ? -1 : undefined).join(':');
      let actions = actionsPart.split(',').filter(Boolean);
      if (!account) actions = actions.filter((a) => a === 'pull');
      return { type, name, actions };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] };
    const claims = {
      iss: issuer,
      sub: account ?? '',
      aud: service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomBytes(12).toString('hex'),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = crypto.sign('sha256', Buffer.from(signingInput), key);
    const token = `${signingInput}.${b64url(sig)}`;
    rec.outcome = 'granted';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}/token`,
    service,
    issuer,
    requests,
    certPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------- the registry

function yamlString(s: string): string {
  return JSON.stringify(s);
}

function configYaml(o: {
  storage: string;
  port: number;
  tls?: { cert: string; key: string };
  htpasswd?: string;
  token?: { realm: string; service: string; issuer: string; bundle: string };
}): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${yamlString(o.storage)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${yamlString(`127.0.0.1:${o.port}`)}`,
    `  secret: ${yamlString(crypto.randomBytes(16).toString('hex'))}`,
  ];
  if (o.tls) lines.push('  tls:', `    certificate: ${yamlString(o.tls.cert)}`, `    key: ${yamlString(o.tls.key)}`);
  if (o.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: "tspod-test-registry"', `    path: ${yamlString(o.htpasswd)}`);
  if (o.token) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${yamlString(o.token.realm)}`,
      `    service: ${yamlString(o.token.service)}`,
      `    issuer: ${yamlString(o.token.issuer)}`,
      `    rootcertbundle: ${yamlString(o.token.bundle)}`,
    );
  }
  return lines.join('\n') + '\n';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts a registry on 127.0.0.1 and waits until /v2/ answers. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  if (!fs.existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing: apt-get install docker-registry (make deps does)`);
  const auth = opts.auth ?? 'none';
  const users = opts.users ?? { tspod: 'tspod-secret' };
  const dir = makeTempDir(`registry-${auth}${opts.tls ? '-tls' : ''}`);
  const logPath = path.join(dir, 'registry.log');
  const storage = path.join(dir, 'storage');
  fs.mkdirSync(storage);

  let child: ChildProcess | undefined;
  let token: (TokenServer & { certPath: string }) | undefined;
  const unregister = onExit(() => {
    child?.kill('SIGKILL');
    if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  });

  try {
    let certPath: string | undefined;
    let tls: { cert: string; key: string } | undefined;
    if (opts.tls) {
      const c = makeSelfSignedCert(dir, 'registry', '127.0.0.1', 'IP:127.0.0.1,DNS:localhost');
      certPath = c.certPath;
      tls = { cert: c.certPath, key: c.keyPath };
    }
    let htpasswd: string | undefined;
    if (auth === 'htpasswd') {
      htpasswd = path.join(dir, 'htpasswd');
      fs.writeFileSync(htpasswd, Object.entries(users).map(([u, p]) => htpasswdLine(u, p)).join('\n') + '\n');
    }
    if (auth === 'token') token = await startTokenServer(dir, users, opts.anonymousPull ?? false);
    const ca = certPath ? fs.readFileSync(certPath, 'utf8') : undefined;
    const scheme = opts.tls ? 'https' : 'http';

    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const configPath = path.join(dir, 'config.yml');
      fs.writeFileSync(
        configPath,
        configYaml({
          storage,
          port,
          tls,
          htpasswd,
          token: token && { realm: token.url, service: token.service, issuer: token.issuer, bundle: token.certPath },
        }),
      );
      const logFd = fs.openSync(logPath, 'a');
      const proc = spawn(REGISTRY_BIN, ['serve', configPath], {
        cwd: dir,
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir, TMPDIR: dir },
        stdio: ['ignore', logFd, logFd],
      });
      fs.closeSync(logFd);
      child = proc;
      let exited = false;
      proc.once('exit', () => {
        exited = true;
      });
      const deadline = Date.now() + 15_000;
      let up = false;
      while (!exited && Date.now() < deadline) {
        try {
          const r = await httpRequest(`${scheme}://127.0.0.1:${port}/v2/`, { ca });
          if (r.status === 200 || r.status === 401) {
            up = true;
            break;
          }
        } catch {
          // not listening yet
        }
        await sleep(50);
      }
      if (up) break;
      proc.kill('SIGKILL');
      const log = fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '';
      if (attempt < 4 && /address already in use/i.test(log)) continue;
      throw new Error(`docker-registry did not start on 127.0.0.1:${port}; its log:\n${log.split('\n').slice(-15).join('\n')}`);
    }

    const host = `127.0.0.1:${port}`;
    const url = `${scheme}://${host}`;
    const firstUser = Object.entries(users)[0];
    const credentials = auth !== 'none' && firstUser ? { username: firstUser[0], password: firstUser[1] } : undefined;
    const proc = child!;
    let stopped = false;

    const request = async (pathOrUrl: string, ro: RequestOptions = {}): Promise<HttpResult> => {
      const target = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${url}${pathOrUrl}`;
      const headers = { ...(ro.headers ?? {}) };
      let r = await httpRequest(target, { method: ro.method, headers, body: ro.body, ca });
      if (r.status !== 401 || ro.auth === false || !credentials) return r;
      const ch = parseChallenge(String(r.headers['www-authenticate'] ?? ''));
      const basic = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
      if (ch.scheme === 'basic') {
        headers.authorization = basic;
      } else if (ch.scheme === 'bearer' && ch.params.realm) {
        const tu = new URL(ch.params.realm);
        if (ch.params.service) tu.searchParams.set('service', ch.params.service);
        if (ch.params.scope) tu.searchParams.set('scope', ch.params.scope);
        const tr = await httpRequest(tu.toString(), { headers: { authorization: basic } });
        if (tr.status !== 200) return r;
        const tj = tr.json<{ token?: string; access_token?: string }>();
        headers.authorization = `Bearer ${tj.token ?? tj.access_token}`;
      } else {
        return r;
      }
      r = await httpRequest(target, { method: ro.method, headers, body: ro.body, ca });
      return r;
    };

    const reg: Registry = {
      url,
      host,
      port,
      scheme,
      auth,
      credentials,
      users,
      certPath,
      token: token && { url: token.url, service: token.service, issuer: token.issuer, requests: token.requests, close: token.close },
      dir,
      logPath,
      pid: proc.pid!,
      ref: (repoRef) => `docker://${host}/${repoRef}`,
      request,
      push: (src, dest, po = {}) => pushImage(reg, src, dest, po),
      pushFixture: (name, dest) => pushFixture(reg, name, dest),
      stop: async () => {
        if (stopped) return;
        stopped = true;
        if (proc.exitCode === null && proc.signalCode === null) {
          const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
          await gone;
          clearTimeout(t);
        }
        await token?.close();
        if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
        unregister();
      },
    };
    opts.t?.after(() => reg.stop());
    return reg;
  } catch (err) {
    child?.kill('SIGKILL');
    await token?.close();
    if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
    unregister();
    throw err;
  }
}

// ---------------------------------------------------------------- pushing

/** Runs skopeo (with the fixtures' accept-anything policy); rejects with its stderr on failure. */
export function skopeo(args: string[], opts: { cwd?: string; timeoutMs?: number; tmpdir?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('skopeo', ['--policy', SKOPEO_POLICY, ...args], {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TMPDIR: opts.tmpdir ?? process.env.TMPDIR ?? '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    const unregister = onExit(() => p.kill('SIGKILL'));
    p.on('error', (e) => {
      clearTimeout(timer);
      unregister();
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      unregister();
      if (code === 0) resolve(out);
      else reject(new Error(`skopeo ${args.join(' ')} failed (${code ?? signal}): ${err.trim()}`));
    });
  });
}

/** skopeo copy SRC docker://HOST/DEST, with the registry's credentials. Returns the docker:// reference. */
export async function pushImage(reg: Registry, skopeoSource: string, dest: string, opts: PushOptions = {}): Promise<string> {
  const args = ['copy', '--dest-tls-verify=false', '--dest-authfile', path.join(reg.dir, 'skopeo-auth.json')];
  if (opts.format === 'v2s2') args.push('--format', 'v2s2');
  if (opts.all) args.push('--all');
  const creds = opts.creds === 'none' ? undefined : (opts.creds ?? reg.credentials);
  if (creds) args.push('--dest-creds', `${creds.username}:${creds.password}`);
  const ref = reg.ref(dest);
  args.push(skopeoSource, ref);
  await skopeo(args, { tmpdir: reg.dir });
  return ref;
}

/** Pushes fixture `name` as `dest` (default `<name>:latest`) in the fixture's registry form. */
export async function pushFixture(reg: Registry, name: string, dest?: string): Promise<string> {
  ensureFixtures();
  const f: Fixture = fixture(name);
  if (!f.registry) throw new Error(`fixture ${name} has no registry form (${f.description})`);
  return pushImage(reg, f.registry.skopeoSource, dest ?? `${name}:latest`, { format: f.registry.format, all: f.registry.all });
}
