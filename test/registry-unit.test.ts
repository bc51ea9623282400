// The docker:// client's logic against small fake registries (node:http on 127.0.0.1):
// reference parsing, auth files, token and basic auth challenges, scheme fallback,
// digest checks on manifests, index resolution, redirects, and error messages. The
// tests against Debian's real docker-registry live elsewhere.
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import type { Readable } from 'node:stream';
import { TspodError, ErrorCode } from '../native/errors.js';
import { errorLine } from '../cmd/remedies.js';
import { MAX_MANIFEST_BYTES } from '../store/digest.js';
import { parseInsecureOptions } from '../cmd/global.js';
import { MediaType } from '../store/manifest/oci.js';
import { authFilePaths, findCredentials, normalizeAuthKey } from '../store/sources/auth.js';
import { parseDockerReference, splitImageName } from '../store/sources/reference.js';
import { parseWwwAuthenticate, resolveRegistryImage, type RegistryOptions } from '../store/sources/registry.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function expectError(code: string, re?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof TspodError, `expected a TspodError, got ${e instanceof Error ? e.stack : String(e)}`);
    const line = errorLine(e); // what the user sees: with the remedy's words (cmd/remedies.ts)
    assert.equal(e.code, code, line);
    if (re) assert.match(line, re);
    assert.ok(!line.includes('\n'), 'one line');
    return true;
  };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tspod-registry-unit-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------- references

describe('parseDockerReference', () => {
  const cases: Array<[string, Partial<ReturnType<typeof parseDockerReference>>]> = [
    ['docker://busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest', name: 'docker.io/library/busybox:latest', endpoint: 'registry-1.docker.io' }],
    ['docker:busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36', reference: '1.36' }],
    ['busybox', { name: 'docker.io/library/busybox:latest' }],
    ['docker://team/app', { registry: 'docker.io', repository: 'team/app' }],
    ['docker://index.docker.io/team/app:v1', { registry: 'docker.io', repository: 'team/app', tag: 'v1' }],
    ['docker://127.0.0.1:5000/busybox', { registry: '127.0.0.1:5000', repository: 'busybox', name: '127.0.0.1:5000/busybox:latest', endpoint: '127.0.0.1:5000' }],
    ['docker://localhost/a/b/c:t', { registry: 'localhost', repository: 'a/b/c', tag: 't' }],
    ['docker://localhost:5000/x', { registry: 'localhost:5000', repository: 'x' }],
    ['docker://[::1]:5000/x', { registry: '[::1]:5000', repository: 'x' }],
    ['docker://Registry.Example.COM/x', { registry: 'Registry.Example.COM', repository: 'x' }],
    ['docker://quay.io/a_b/c-d.e__f:v1.0-rc_1', { registry: 'quay.io', repository: 'a_b/c-d.e__f', tag: 'v1.0-rc_1' }],
    [
      `docker://quay.io/x@sha256:${'a'.repeat(64)}`,
      { tag: undefined, digest: `sha256:${'a'.repeat(64)}`, reference: `sha256:${'a'.repeat(64)}`, name: `quay.io/x@sha256:${'a'.repeat(64)}` },
    ],
    [`docker://quay.io/x:t@sha256:${'a'.repeat(64)}`, { tag: 't', reference: `sha256:${'a'.repeat(64)}`, name: `quay.io/x@sha256:${'a'.repeat(64)}` }],
  ];
  for (const [input, want] of cases) {
    test(input, () => {
      const r = parseDockerReference(input);
      for (const [k, v] of Object.entries(want)) assert.equal(r[k as keyof typeof r], v, k);
      assert.equal(r.url, `docker://${r.name}`);
    });
  }

  const badCases: Array<[string, RegExp]> = [
    ['docker://', /no image name/],
    ['docker://Busybox', /must be lower-case/],
    ['docker://quay.io/Team/app', /must be lower-case/],
    ['docker://quay.io/', /no repository name/],
    ['docker://quay.io//x', /empty path component/],
    ['docker://busybox:', /empty tag/],
    ['docker://busybox:-x', /invalid tag/],
    ['docker://busybox@sha256:abc', /not a digest/],
    [`docker://busybox@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/],
    ['docker://host:99999/x', /invalid port/],
    ['docker://ho_st.com/x', /invalid registry host/],
    ['docker://a b', /white space/],
    ['docker://https://quay.io/x', /URL is not an image name/],
    ['docker://x/-y', /invalid repository name component/],
    [`docker://quay.io/${'a'.repeat(260)}`, /longer than 255/],
  ];
  for (const [input, re] of badCases) {
    test(`rejects ${input.slice(0, 60)}`, () => {
      assert.throws(() => parseDockerReference(input), expectError(ErrorCode.BadInput, re));
    });
  }

  test('splitImageName', () => {
    assert.deepEqual(splitImageName('127.0.0.1:5000/busybox:latest'), { repoName: '127.0.0.1:5000/busybox', tag: 'latest', digest: undefined });
    assert.deepEqual(splitImageName('127.0.0.1:5000/busybox'), { repoName: '127.0.0.1:5000/busybox', tag: undefined, digest: undefined });
    assert.deepEqual(splitImageName('q.io/x@sha256:ab'), { repoName: 'q.io/x', tag: undefined, digest: 'sha256:ab' });
  });
});

// ---------------------------------------------------------------- auth files

describe('auth files', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  test('the default search order (podman first, then docker)', () => {
    const env = { HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000' };
    assert.deepEqual(authFilePaths(env), ['/run/user/1000/containers/auth.json', '/home/u/.config/containers/auth.json', '/home/u/.docker/config.json', '/home/u/.dockercfg']);
    assert.equal(authFilePaths({ ...env, REGISTRY_AUTH_FILE: '/etc/auth.json' })[0], '/etc/auth.json');
    assert.equal(authFilePaths({ HOME: '/h', XDG_CONFIG_HOME: '/cfg', DOCKER_CONFIG: '/dc' })[1], '/cfg/containers/auth.json');
    assert.equal(authFilePaths({ HOME: '/h', XDG_CONFIG_HOME: '/cfg', DOCKER_CONFIG: '/dc' })[2], '/dc/config.json');
    assert.match(authFilePaths({ HOME: '/h' })[0], /^\/run\/containers\/\d+\/auth\.json$/);
    assert.deepEqual(authFilePaths({ ...env, TSPOD_AUTH_FILES: '/a.json:/b.json' }), ['/a.json', '/b.json']);
  });

  test('finds auth and username/password entries; first file with an entry wins', () => {
    const podman = path.join(tmp, 'podman.json');
    const docker = path.join(tmp, 'docker.json');
    fs.writeFileSync(podman, JSON.stringify({ auths: { 'quay.io': { auth: b64('alice:pa:ss') }, 'quay.io/team': { auth: b64('teamuser:tp') } } }));
    fs.writeFileSync(
      docker,
      JSON.stringify({
        auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hp') }, '127.0.0.1:5000': { username: 'bob', password: 'bp' }, 'quay.io': { auth: b64('other:o') } },
        credsStore: 'desktop',
      }),
    );
    const files = [path.join(tmp, 'missing.json'), podman, docker];
    assert.deepEqual(findCredentials('quay.io', 'x/y', { files }), { username: 'alice', password: 'pa:ss', source: podman });
    assert.deepEqual(findCredentials('quay.io', 'team/app', { files }), { username: 'teamuser', password: 'tp', source: podman });
    assert.deepEqual(findCredentials('docker.io', 'library/busybox', { files }), { username: 'hubuser', password: 'hp', source: docker });
    assert.deepEqual(findCredentials('127.0.0.1:5000', 'busybox', { files }), { username: 'bob', password: 'bp', source: docker });
    assert.equal(findCredentials('ghcr.io', 'x', { files }), undefined);
  });

  test('legacy ~/.dockercfg, broken files and bad entries are skipped', () => {
    const legacy = path.join(tmp, '.dockercfg');
    fs.writeFileSync(legacy, JSON.stringify({ 'registry.example.com': { auth: b64('old:pw'), email: 'x@y' } }));
    const broken = path.join(tmp, 'broken.json');
    fs.writeFileSync(broken, '{ not json');
    const badEntry = path.join(tmp, 'bad-entry.json');
    fs.writeFileSync(badEntry, JSON.stringify({ auths: { 'registry.example.com': { auth: b64('nocolon') } } }));
    assert.deepEqual(findCredentials('registry.example.com', 'x', { files: [broken, badEntry, legacy] }), { username: 'old', password: 'pw', source: legacy });
  });

  test('normalizeAuthKey', () => {
    assert.equal(normalizeAuthKey('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normalizeAuthKey('registry-1.docker.io'), 'docker.io');
    assert.equal(normalizeAuthKey('http://LocalHost:5000'), 'localhost:5000');
    assert.equal(normalizeAuthKey('quay.io/team/'), 'quay.io/team');
  });

  test('WWW-Authenticate parsing', () => {
    assert.deepEqual(parseWwwAuthenticate('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' } },
    ]);
    assert.deepEqual(parseWwwAuthenticate('Basic realm="Registry Realm", Bearer realm="x\\"y",error=invalid_token'), [
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'x"y', error: 'invalid_token' } },
    ]);
  });
});

// ---------------------------------------------------------------- a fake registry

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  accept?: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => void;

interface Fake {
  port: number;
  host: string;
  seen: Seen[];
  routes: Map<string, Handler>;
  /** Fallback for paths without a route (default 404). */
  fallback?: Handler;
  close(): Promise<void>;
}

const servers: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function startFake(tlsOptions?: https.ServerOptions): Promise<Fake> {
  const fake: Fake = { port: 0, host: '', seen: [], routes: new Map(), close: async () => undefined };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const seen: Seen = { method: req.method ?? 'GET', url: req.url ?? '/', authorization: req.headers.authorization, accept: req.headers.accept };
    fake.seen.push(seen);
    const pathOnly = (req.url ?? '/').split('?')[0];
    const h = fake.routes.get(pathOnly) ?? fake.fallback;
    if (h) h(req, res, seen);
    else {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }));
    }
  };
  const server = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.port = (server.address() as net.AddressInfo).port;
  fake.host = `127.0.0.1:${fake.port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  servers.push(fake);
  return fake;
}

const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

/** A one-layer image: its blobs and manifest. */
function makeImage(arch = 'amd64', extra: Record<string, unknown> = {}) {
  const layer = Buffer.from(`layer bytes for ${arch}`);
  const config = Buffer.from(
    JSON.stringify({ architecture: arch, os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [sha(`diff ${arch}`)] } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha(config), size: config.length },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha(layer), size: layer.length }],
      ...extra,
    }),
  );
  return { layer, config, manifest, digest: sha(manifest) };
}

/** Serves an image (manifest by tag and digest, and its blobs) on a fake. */
function serveImage(fake: Fake, repo: string, tag: string, img: ReturnType<typeof makeImage>, guard?: (seen: Seen, res: http.ServerResponse) => boolean) {
  const manifestHandler: Handler = (_req, res, seen) => {
    if (guard && !guard(seen, res)) return;
    res.writeHead(200, { 'Content-Type': MediaType.ociManifest, 'Docker-Content-Digest': img.digest, 'Content-Length': String(img.manifest.length) });
    res.end(img.manifest);
  };
  fake.routes.set(`/v2/${repo}/manifests/${tag}`, manifestHandler);
  fake.routes.set(`/v2/${repo}/manifests/${img.digest}`, manifestHandler);
  for (const blob of [img.config, img.layer]) {
    fake.routes.set(`/v2/${repo}/blobs/${sha(blob)}`, (_req, res, seen) => {
      if (guard && !guard(seen, res)) return;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.length) });
      res.end(blob);
    });
  }
}

const pingOk: Handler = (_req, res) => json(res, 200, {});

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const insecureHttp = parseInsecureOptions(['http']);
const secure = parseInsecureOptions([]);
const baseOpts = (o: Partial<RegistryOptions> = {}): RegistryOptions => ({ insecure: insecureHttp, authFiles: [], platform: { os: 'linux', architecture: 'amd64' }, ...o });

async function resolveAndClose(ref: string, opts: RegistryOptions) {
  const c = await resolveRegistryImage(ref, opts);
  await c.close?.();
  return c;
}

describe('registry client', () => {
  test('plain registry: manifest, names, blobs; plain http needs --insecure-options=http', async () => {
    const fake = await startFake();
    fake.routes.set('/v2/', pingOk);
    const img = makeImage();
    serveImage(fake, 'busybox', 'latest', img);

    const c = await resolveRegistryImage(`docker://${fake.host}/busybox`, baseOpts());
    try {
      assert.equal(c.kind, 'oci');
      assert.equal(c.source, `docker://${fake.host}/busybox:latest`);
      assert.deepEqual(c.names, [`${fake.host}/busybox:latest`]);
      assert.deepEqual(c.manifest.ref, { mediaType: MediaType.ociManifest, digest: img.digest, size: img.manifest.length });
      assert.ok(c.manifest.bytes.equals(img.manifest));
      assert.equal(c.index, undefined);
      const layerRef = { mediaType: MediaType.ociLayerGzip, digest: sha(img.layer), size: img.layer.length };
      assert.ok((await readAll(await c.openBlob(layerRef))).equals(img.layer));
      const accept = fake.seen.find((s) => s.url.includes('/manifests/'))?.accept ?? '';
      for (const mt of [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList]) assert.ok(accept.includes(mt), mt);
      await assert.rejects(
        c.openBlob({ mediaType: MediaType.ociLayerGzip, digest: sha('nope'), size: 4 }),
        expectError(ErrorCode.NotFound, /blob sha256:[0-9a-f]+ of image ".*busybox:latest" not found in registry/),
      );
    } finally {
      await c.close?.();
    }

    // Without http allowed: https fails against a plain-http server, with advice.
    await assert.rejects(
      resolveRegistryImage(`docker://${fake.host}/busybox`, baseOpts({ insecure: secure })),
      expectError(ErrorCode.Network, new RegExp(`127\\.0\\.0\\.1:${fake.port}.*TLS handshake failed.*--insecure-options=http`)),
    );
    const named = await resolveAndClose(`docker://${fake.host}/busybox`, baseOpts({ names: ['custom/name:x'] }));
    assert.deepEqual(named.names, ['custom/name:x']);
  });

  test('bearer token auth with credentials; token reused for blobs; Authorization not sent to a redirect target', async () => {
    const fake = await startFake();
    const storage = await startFake();
    const img = makeImage();
    const token = 'tok-123';
    const creds = path.join(tmp, 'token-auth.json');
    fs.writeFileSync(creds, JSON.stringify({ auths: { [fake.host]: { auth: Buffer.from('alice:secret').toString('base64') } } }));
    const challenge = `Bearer realm="http://${fake.host}/token",service="fake-registry"`;
    const guard = (seen: Seen, res: http.ServerResponse) => {
      if (seen.authorization === `Bearer ${token}`) return true;
      json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, { 'WWW-Authenticate': `${challenge},scope="repository:team/app:pull"` });
      return false;
    };
    fake.routes.set('/v2/', (_req, res, seen) => (guard(seen, res) ? json(res, 200, {}) : undefined));
    fake.routes.set('/token', (req, res, seen) => {
      const q = new URL(req.url!, 'http://x').searchParams;
      if (seen.authorization !== `Basic ${Buffer.from('alice:secret').toString('base64')}`) return json(res, 401, { details: 'bad creds' });
      assert.equal(q.get('service'), 'fake-registry');
      assert.deepEqual(q.getAll('scope'), ['repository:team/app:pull']);
      json(res, 200, { token, expires_in: 300 });
    });
    serveImage(fake, 'team/app', 'v1', img, guard);
    // The layer is redirected to "storage" (another origin).
    fake.routes.set(`/v2/team/app/blobs/${sha(img.layer)}`, (_req, res, seen) => {
      if (!guard(seen, res)) return;
      res.writeHead(307, { Location: `http://${storage.host}/bucket/layer?sig=abc` });
      res.end();
    });
    storage.routes.set('/bucket/layer', (_req, res) => {
      res.writeHead(200, { 'Content-Length': String(img.layer.length) });
      res.end(img.layer);
    });

    const c = await resolveRegistryImage(`docker://${fake.host}/team/app:v1`, baseOpts({ authFiles: [creds] }));
    try {
      assert.ok((await readAll(await c.openBlob({ mediaType: MediaType.ociConfig, digest: sha(img.config), size: img.config.length }))).equals(img.config));
      assert.ok((await readAll(await c.openBlob({ mediaType: MediaType.ociLayerGzip, digest: sha(img.layer), size: img.layer.length }))).equals(img.layer));
    } finally {
      await c.close?.();
    }
    assert.equal(fake.seen.filter((s) => s.url.startsWith('/token')).length, 1, 'one token for everything');
    assert.equal(storage.seen.length, 1);
    assert.equal(storage.seen[0].authorization, undefined, 'no Authorization to another origin');
  });

  test('anonymous bearer tokens (access_token); a denied anonymous pull says how to log in', async () => {
    const fake = await startFake();
    const img = makeImage();
    let allowAnonymous = true;
    const challenge = `Bearer realm="http://${fake.host}/token",service="svc"`;
    const guard = (seen: Seen, res: http.ServerResponse) => {
      if (seen.authorization === 'Bearer anon') return true;
      json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, { 'WWW-Authenticate': challenge });
      return false;
    };
    fake.routes.set('/v2/', (_req, res) => json(res, 401, {}, { 'WWW-Authenticate': challenge }));
    fake.routes.set('/token', (_req, res, seen) => {
      assert.equal(seen.authorization, undefined);
      if (allowAnonymous) json(res, 200, { access_token: 'anon' });
      else json(res, 401, {});
    });
    serveImage(fake, 'pub', 'latest', img, guard);
    const c = await resolveAndClose(`docker://${fake.host}/pub`, baseOpts());
    assert.equal(c.manifest.ref.digest, img.digest);

    allowAnonymous = false;
    await assert.rejects(
      resolveRegistryImage(`docker://${fake.host}/pub`, baseOpts()),
      expectError(ErrorCode.Auth, new RegExp(`registry 127\\.0\\.0\\.1:${fake.port} requires a login to pull .*pub.*podman login 127\\.0\\.0\\.1:${fake.port}`)),
    );
  });

  test('a token that stops working is renewed once; a second 401 is an Auth error', async () => {
    const fake = await startFake();
    const img = makeImage();
    let n = 0;
    let valid = 'tok-0';
    const challenge = `Bearer realm="http://${fake.host}/token",service="svc"`;
    fake.routes.set('/v2/', (_req, res) => json(res, 401, {}, { 'WWW-Authenticate': challenge }));
    fake.routes.set('/token', (_req, res) => json(res, 200, { token: `tok-${n++}` }));
    serveImage(fake, 'app', 'latest', img, (seen, res) => {
      if (seen.authorization === `Bearer ${valid}`) return true;
      json(res, 401, {}, { 'WWW-Authenticate': challenge });
      return false;
    });
    const c = await resolveRegistryImage(`docker://${fake.host}/app`, baseOpts());
    try {
      valid = 'tok-1'; // the first token "expired"
      const ref = { mediaType: MediaType.ociConfig, digest: sha(img.config), size: img.config.length };
      assert.ok((await readAll(await c.openBlob(ref))).equals(img.config));
      valid = 'never';
      await assert.rejects(c.openBlob(ref), expectError(ErrorCode.Auth, /requires a login/));
    } finally {
      await c.close?.();
    }
  });

  test('basic auth: with credentials, without, and refused', async () => {
    const fake = await startFake();
    const img = makeImage();
    const good = `Basic ${Buffer.from('bob:pw').toString('base64')}`;
    const guard = (seen: Seen, res: http.ServerResponse) => {
      if (seen.authorization === good) return true;
      json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, { 'WWW-Authenticate': 'Basic realm="Registry Realm"' });
      return false;
    };
    fake.routes.set('/v2/', (_req, res, seen) => (guard(seen, res) ? json(res, 200, {}) : undefined));
    serveImage(fake, 'private', 'latest', img, guard);

    const c = await resolveAndClose(`docker://${fake.host}/private`, baseOpts({ credentials: { username: 'bob', password: 'pw', source: 'test' } }));
    assert.equal(c.manifest.ref.digest, img.digest);
    await assert.rejects(resolveRegistryImage(`docker://${fake.host}/private`, baseOpts()), expectError(ErrorCode.Auth, /requires a login.*podman login/));
    await assert.rejects(
      resolveRegistryImage(`docker://${fake.host}/private`, baseOpts({ credentials: { username: 'bob', password: 'wrong', source: '/x/auth.json' } })),
      (e: unknown) => {
        expectError(ErrorCode.Auth, /denied user "bob" \(from \/x\/auth\.json\)/)(e);
        assert.ok(!(e as TspodError).line.includes('wrong'), 'no password in the message');
        return true;
      },
    );
  });

  test('token server refusing credentials names the user, not the password', async () => {
    const fake = await startFake();
    fake.routes.set('/v2/', (_req, res) => json(res, 401, {}, { 'WWW-Authenticate': `Bearer realm="http://${fake.host}/token"` }));
    fake.routes.set('/token', (_req, res) => json(res, 401, {}));
    await assert.rejects(
      resolveRegistryImage(`docker://${fake.host}/x`, baseOpts({ credentials: { username: 'carol', password: 's3cr3t', source: 'f.json' } })),
      (e: unknown) => {
        expectError(ErrorCode.Auth, /refused the credentials of user "carol" \(from f\.json\)/)(e);
        assert.ok(!(e as TspodError).line.includes('s3cr3t'));
        return true;
      },
    );
  });

  test('tampered manifests: Docker-Content-Digest and pinned digests are checked', async () => {
    const fake = await startFake();
    fake.routes.set('/v2/', pingOk);
    const img = makeImage();
    const other = makeImage('arm64');
    fake.routes.set('/v2/app/manifests/latest', (_req, res) => {
      res.writeHead(200, { 'Content-Type': MediaType.ociManifest, 'Docker-Content-Digest': img.digest });
      res.end(other.manifest);
    });
    fake.routes.set(`/v2/app/manifests/${img.digest}`, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MediaType.ociManifest });
      res.end(other.manifest);
    });
    await assert.rejects(resolveRegistryImage(`docker://${fake.host}/app:latest`, baseOpts()), expectError(ErrorCode.DigestMismatch, /registry says its digest is/));
    await assert.rejects(resolveRegistryImage(`docker://${fake.host}/app@${img.digest}`, baseOpts()), expectError(ErrorCode.DigestMismatch, /expected sha256:/));
  });

  test('indexes resolve to the platform; the index is kept; entries are verified', async () => {
    const fake = await startFake();
    fake.routes.set('/v2/', pingOk);
    const amd = makeImage('amd64');
    const arm = makeImage('arm64');
    const idx = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [
          { mediaType: MediaType.ociManifest, digest: amd.digest, size: amd.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: MediaType.ociManifest, digest: arm.digest, size: arm.manifest.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        ],
      }),
    );
    fake.routes.set('/v2/multi/manifests/latest', (_req, res) => {
      res.writeHead(200, { 'Content-Type': MediaType.ociIndex, 'Docker-Content-Digest': sha(idx) });
      res.end(idx);
    });
    serveImage(fake, 'multi', 'unused-amd', amd);
    serveImage(fake, 'multi', 'unused-arm', arm);

    const c = await resolveAndClose(`docker://${fake.host}/multi`, baseOpts({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }));
    assert.equal(c.manifest.ref.digest, arm.digest);
    assert.ok(c.manifest.bytes.equals(arm.manifest));
    assert.deepEqual(c.index?.ref, { mediaType: MediaType.ociIndex, digest: sha(idx), size: idx.length });
    assert.ok(c.index?.bytes.equals(idx));
    const host = await resolveAndClose(`docker://${fake.host}/multi`, baseOpts());
    assert.equal(host.manifest.ref.digest, amd.digest);

    await assert.rejects(
      resolveRegistryImage(`docker://${fake.host}/multi`, baseOpts({ platform: { os: 'linux', architecture: 's390x' } })),
      expectError(ErrorCode.Platform, /has no image for linux\/s390x: it has linux\/amd64, linux\/arm64\/v8/),
    );

    // The registry serves other bytes for the entry's digest.
    fake.routes.set(`/v2/multi/manifests/${arm.digest}`, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MediaType.ociManifest });
      res.end(amd.manifest);
    });
    await assert.rejects(
      resolveRegistryImage(`docker://${fake.host}/multi`, baseOpts({ platform: { os: 'linux', architecture: 'arm64' } })),
      expectError(ErrorCode.DigestMismatch, /linux\/arm64\/v8/),
    );
  });

  test('a Docker manifest list with Docker manifests resolves too', async () => {
    const fake = await startFake();
    fake.routes.set('/v2/', pingOk);
    const layer = Buffer.from('l');
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('d')] } }));
    const m = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, digest: sha(config), size: config.length },
        layers: [{ mediaType: MediaType.dockerLayerGzip, digest: sha(layer), size: 1 }],
      }),
    );
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifestList,
        manifests: [{ mediaType: MediaType.dockerManifest, digest: sha(m), size: m.length, platform: { os: 'linux', architecture: 'amd64' } }],
      }),
    );
    fake.routes.set('/v2/d/manifests/latest', (_req, res) => {
      res.writeHead(200, { 'Content-Type': MediaType.dockerManifestList });
      res.end(list);
    });
    fake.routes.set(`/v2/d/manifests/${sha(m)}`, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MediaType.dockerManifest });
      res.end(m);
    });
    const c = await resolveAndClose(`docker://${fake.host}/d`, baseOpts());
    assert.equal(c.manifest.ref.mediaType, MediaType.dockerManifest);
    assert.equal(c.index?.ref.mediaType, MediaType.dockerManifestList);
  });

  test('errors: 404, 5xx, 429, schema 1, artifacts, oversized manifests, not a registry', async () => {
    const fake = await startFake();
    fake.routes.set('/v2/', pingOk);
    fake.routes.set('/v2/broken/manifests/latest', (_req, res) => json(res, 503, { errors: [{ code: 'UNAVAILABLE', message: 'backend down' }] }));
    fake.routes.set('/v2/limited/manifests/latest', (_req, res) => json(res, 429, { errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
    fake.routes.set('/v2/old/manifests/latest', (_req, res) => json(res, 200, { schemaVersion: 1, name: 'old', tag: 'latest' }, { 'Content-Type': MediaType.dockerSchema1Signed }));
    fake.routes.set('/v2/huge/manifests/latest', (_req, res) => {
      res.writeHead(200, { 'Content-Type': MediaType.ociManifest });
      const chunk = Buffer.alloc(1 << 20, 0x20);
      for (let i = 0; i <= MAX_MANIFEST_BYTES / chunk.length; i++) res.write(chunk); // one MiB over the limit
      res.end();
    });
    const artifact = makeImage('amd64', { config: { mediaType: 'application/vnd.example.config+json', digest: sha('c'), size: 1 } });
    serveImage(fake, 'artifact', 'latest', artifact);

    await assert.rejects(
      resolveRegistryImage(`docker://${fake.host}/nothere:v2`, baseOpts()),
      expectError(ErrorCode.NotFound, new RegExp(`^image "127\\.0\\.0\\.1:${fake.port}/nothere:v2" not found in registry 127\\.0\\.0\\.1:${fake.port}`)),
    );
    await assert.rejects(resolveRegistryImage(`docker://${fake.host}/broken`, baseOpts()), expectError(ErrorCode.Network, /answered 503.*UNAVAILABLE: backend down/));
    await assert.rejects(resolveRegistryImage(`docker://${fake.host}/limited`, baseOpts()), expectError(ErrorCode.Network, /429.*rate-limiting/));
    await assert.rejects(resolveRegistryImage(`docker://${fake.host}/old`, baseOpts()), expectError(ErrorCode.Unsupported, /schema 1/));
    await assert.rejects(resolveRegistryImage(`docker://${fake.host}/huge`, baseOpts()), expectError(ErrorCode.BadFormat, new RegExp(`larger than ${MAX_MANIFEST_BYTES} bytes`)));
    await assert.rejects(resolveRegistryImage(`docker://${fake.host}/artifact`, baseOpts()), expectError(ErrorCode.Unsupported, /not a container image/));

    const notRegistry = await startFake();
    await assert.rejects(resolveRegistryImage(`docker://${notRegistry.host}/x`, baseOpts()), expectError(ErrorCode.Network, /does not serve the registry API v2/));
  });

  test('an unreachable registry is a Network error naming host:port', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(resolveRegistryImage(`docker://127.0.0.1:${port}/x`, baseOpts({ insecure: secure })), expectError(ErrorCode.Network, new RegExp(`127\\.0\\.0\\.1:${port}: connection refused`)));
    await assert.rejects(resolveRegistryImage(`docker://127.0.0.1:${port}/x`, baseOpts()), expectError(ErrorCode.Network, new RegExp(`127\\.0\\.0\\.1:${port} over https or http`)));
  });

  test('a registry that never answers times out', async () => {
    const fake = await startFake();
    fake.fallback = () => undefined; // never responds
    fake.routes.set('/v2/', pingOk);
    await assert.rejects(
      resolveRegistryImage(`docker://${fake.host}/slow`, baseOpts({ timeoutMs: 300 })),
      expectError(ErrorCode.Network, new RegExp(`cannot reach registry 127\\.0\\.0\\.1:${fake.port}: no response within`)),
    );
  });

  test('a blob body that stalls is abandoned', async () => {
    const fake = await startFake();
    fake.routes.set('/v2/', pingOk);
    const img = makeImage();
    serveImage(fake, 'stall', 'latest', img);
    fake.routes.set(`/v2/stall/blobs/${sha(img.layer)}`, (_req, res) => {
      res.writeHead(200, { 'Content-Length': String(img.layer.length) });
      res.write(img.layer.subarray(0, 3)); // …and nothing more
    });
    const c = await resolveRegistryImage(`docker://${fake.host}/stall`, baseOpts({ idleTimeoutMs: 300 }));
    try {
      const s = await c.openBlob({ mediaType: MediaType.ociLayerGzip, digest: sha(img.layer), size: img.layer.length });
      await assert.rejects(readAll(s), expectError(ErrorCode.Network, /stalled/));
    } finally {
      await c.close?.();
    }
  });

  describe('TLS', () => {
    let tlsOptions: https.ServerOptions | undefined;
    before(() => {
      const dir = fs.mkdtempSync(path.join(tmp, 'tls-'));
      const r = spawnSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`],
        { stdio: 'ignore' },
      );
      if (r.status === 0) tlsOptions = { key: fs.readFileSync(`${dir}/key.pem`), cert: fs.readFileSync(`${dir}/cert.pem`) };
    });

    test('a self-signed certificate is refused with advice, accepted with --insecure-options=tls', async (t) => {
      if (!tlsOptions) return t.skip('openssl could not make a certificate');
      const fake = await startFake(tlsOptions);
      fake.routes.set('/v2/', pingOk);
      const img = makeImage();
      serveImage(fake, 'secure', 'latest', img);
      await assert.rejects(
        resolveRegistryImage(`docker://${fake.host}/secure`, baseOpts({ insecure: secure })),
        expectError(ErrorCode.Network, new RegExp(`127\\.0\\.0\\.1:${fake.port}: its TLS certificate is not trusted.*--insecure-options=tls`)),
      );
      const c = await resolveAndClose(`docker://${fake.host}/secure`, baseOpts({ insecure: parseInsecureOptions(['tls']) }));
      assert.equal(c.manifest.ref.digest, img.digest);
      assert.ok(fake.seen.every((s) => s.url.startsWith('/v2/')));
    });
  });
});
