// The plans stage1 /init writes (stage1/pod-setup.ts: appPlans, buildPlan),
// compared with golden files in test/unit/golden/<case>.plan, for pods made by
// hand in a scratch directory (its path is written @SCRATCH@ there). Each plan is
// also given to the real helper's parser (`tspod-helper plan-check`), so the
// writer and the reader agree. After a deliberate change of the plans:
//   TSPOD_UPDATE_GOLDEN=1 make unit
// rewrites the golden files (read the diff before committing it).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AppcApp, AppcImageManifest } from '../../stage1/contract/appc.js';
import { POD_FILES, type PodApp, type PodManifest, type RuntimeConfig } from '../../stage1/contract/pod.js';
import { appPlans, buildPlan, type PodContext } from '../../stage1/pod-setup.js';
import { encodeField } from '../../stage1/plan.js';
import { planCheck, REPO, scratch } from './util.js';

const GOLDEN = path.join(REPO, 'test/unit/golden');
const UPDATE = process.env.TSPOD_UPDATE_GOLDEN === '1';
const UUID = '6f1e2d3c-4b5a-4978-8e6f-5a4b3c2d1e0f';

interface AppInput {
  pod: Omit<PodApp, 'image'>;
  /** The image's app (used when the pod's app has none). */
  image?: AppcApp;
  /** Paths (relative, `/` at the end: a directory) in the image's one layer. */
  files: string[];
}

interface Case {
  name: string;
  apps: AppInput[];
  volumes?: PodManifest['volumes'];
  isolators?: PodManifest['isolators'];
  runtime?: Partial<RuntimeConfig>;
  stdinInherit?: boolean;
  /** The rest of the context, given the scratch directory and the pod directory. */
  ctx?: (base: string, pod: string) => Partial<PodContext>;
}

/** Makes the pod directory and the apps' layers, then builds the plan. */
function plan(c: Case): { text: string; base: string } {
  const base = scratch();
  const pod = path.join(base, 'pods/run', UUID);
  fs.mkdirSync(pod, { recursive: true });
  for (const [i, a] of c.apps.entries()) {
    const layer = path.join(base, 'layers', `${i}-${a.pod.name}`);
    fs.mkdirSync(layer, { recursive: true });
    for (const f of a.files) {
      const p = path.join(layer, f);
      if (f.endsWith('/')) fs.mkdirSync(p, { recursive: true });
      else {
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, '');
      }
    }
    const manifest: AppcImageManifest = { acKind: 'ImageManifest', acVersion: '0.8.11', name: `example.com/${a.pod.name}`, ...(a.image ? { app: a.image } : {}) } as AppcImageManifest;
    fs.mkdirSync(path.join(pod, 'appsinfo', a.pod.name), { recursive: true });
    fs.writeFileSync(path.join(pod, POD_FILES.appManifest(a.pod.name)), JSON.stringify(manifest));
    fs.writeFileSync(path.join(pod, POD_FILES.appLayers(a.pod.name)), JSON.stringify([layer]));
  }
  fs.mkdirSync(path.join(base, 'host/dir'), { recursive: true });
  fs.writeFileSync(path.join(base, 'host/file'), '');
  const manifest: PodManifest = {
    acKind: 'PodManifest',
    acVersion: '0.8.11',
    apps: c.apps.map((a) => ({ ...a.pod, image: { id: `sha512-${a.pod.name}` } })),
    ...(c.volumes ? { volumes: c.volumes.map((v) => (v.source ? { ...v, source: v.source.replace('@SCRATCH@', base) } : v)) } : {}),
    ...(c.isolators ? { isolators: c.isolators } : {}),
  };
  const runtime: RuntimeConfig = { uuid: UUID, net: 'default', hostname: c.name, interactive: false, debug: false, ...c.runtime };
  const ctx: PodContext = { podDir: pod, uuid: UUID, manifest, runtime, copiedRootfs: () => undefined, ...c.ctx?.(base, pod) };
  return { text: buildPlan(ctx, appPlans(ctx), c.stdinInherit ?? false), base };
}

const sh: AppcApp = { exec: ['/bin/sh', '-c', 'echo hi; sleep 1'], user: '0', group: '0' };

const CASES: Case[] = [
  {
    // One app as `tspod run IMAGE` makes it: the default network (a namespace file
    // and its release), appc's default capabilities and seccomp filter, masked paths,
    // the image has /etc without hosts or mtab.
    name: 'default',
    stdinInherit: true,
    apps: [{ pod: { name: 'main', app: sh }, files: ['bin/', 'etc/passwd'] }],
    ctx: (_base, pod) => ({ netns: path.join(pod, 'netns'), exitExec: ['/bin/bash', path.join(pod, 'stage1/net-release')] }),
  },
  {
    // Two apps and most of what an app can ask for: volumes (host dir and file,
    // recursive or not, read-only by the volume or the mount point, an empty one,
    // one on /sys), handlers, credentials by name and path, capabilities kept,
    // no_new_privs, oom score, a custom seccomp filter, limits, a --device, a
    // read-only root, sysctls; --net=host, --ipc=parent, cgroup v2 (device program).
    name: 'multi',
    volumes: [
      { name: 'data', kind: 'host', source: '@SCRATCH@/host/dir' },
      { name: 'conf', kind: 'host', source: '@SCRATCH@/host/file', readOnly: true },
      { name: 'flat', kind: 'host', source: '@SCRATCH@/host/dir', recursive: false },
      { name: 'scratch', kind: 'empty', mode: '0750', uid: 5, gid: 6 },
    ],
    isolators: [{ name: 'os/unix/sysctl', value: { 'kernel.shmmax': '1048576' } }],
    runtime: { net: 'host', ipc: 'private' },
    ctx: () => ({ cgroups: { version: 2, root: '/sys/fs/cgroup', controllers: ['cpu', 'memory', 'pids'] } }),
    apps: [
      {
        pod: {
          name: 'web',
          readOnlyRootFS: true,
          mounts: [
            { volume: 'data', path: '/srv/data' },
            { volume: 'conf', path: '/etc/web.conf' },
            { volume: 'scratch', path: 'tmp/scratch' },
          ],
          annotations: [{ name: 'tspod/devices', value: JSON.stringify([{ hostPath: '/dev/zero', podPath: '/dev/zero2', permissions: 'r' }]) }],
          app: {
            exec: ['/usr/bin/web', '--port', '80', ''],
            user: 'www-data',
            group: '/etc/web.conf',
            supplementaryGIDs: [33, 44],
            workingDirectory: '/srv',
            environment: [{ name: 'MODE', value: 'a b%c' }, { name: 'PATH', value: '/usr/bin' }],
            eventHandlers: [
              { name: 'post-stop', exec: ['/bin/cleanup'] },
              { name: 'pre-start', exec: ['/bin/setup', '-'] },
            ],
            mountPoints: [{ name: 'data', path: '/srv/data', readOnly: true }],
            isolators: [
              { name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_NET_BIND_SERVICE', 'CAP_CHOWN'] } },
              { name: 'os/linux/no-new-privileges', value: true },
              { name: 'os/linux/oom-score-adj', value: 500 },
              { name: 'os/linux/seccomp-retain-set', value: { set: ['@rkt/default-whitelist'], errno: 'ENOSYS' } },
              { name: 'resource/memory', value: { limit: '64M' } },
            ],
          },
        },
        files: ['usr/bin/web', 'etc/hosts', 'etc/mtab'],
      },
      {
        pod: { name: 'side', mounts: [{ volume: 'flat', path: '/sys/fs/x' }] },
        image: { exec: ['/bin/true'], user: '1000', group: '1000' },
        files: ['bin/true'],
      },
    ],
  },
  {
    // --private-users (idmapped layers, owned set-up), an app with --no-overlay (a
    // copied rootfs with /etc), --insecure-options=capabilities,paths,seccomp, the
    // pod's own DNS files, cgroup v1 (device rules written by init, none here).
    name: 'userns-insecure',
    runtime: { disableCapabilities: true, disablePaths: true, disableSeccomp: true },
    ctx: (base, pod) => ({
      userns: { uidMap: [[0, 0x10010000, 65536]], gidMap: [[0, 0x10010000, 65536]] },
      copiedRootfs: (app) => {
        if (app !== 'copied') return undefined;
        const copy = path.join(pod, POD_FILES.appCopiedRootfs(app));
        fs.mkdirSync(path.join(copy, 'etc'), { recursive: true });
        return copy;
      },
      etc: { resolvConf: path.join(pod, 'stage1/resolv.conf'), hosts: path.join(pod, 'stage1/hosts') },
      cgroups: { version: 1, mounts: { cpu: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory', devices: '/sys/fs/cgroup/devices' } },
      netns: path.join(base, 'netns'),
    }),
    apps: [
      { pod: { name: 'copied', app: sh }, files: ['bin/'] },
      { pod: { name: 'layered', app: sh }, files: ['etc/hosts'] },
    ],
  },
];

describe('stage1 plans (golden files, no root)', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const { text, base } = plan(c);
      const check = planCheck(text);
      assert.equal(check.code, 0, `the helper refuses the plan: ${check.err}`);
      const golden = path.join(GOLDEN, `${c.name}.plan`);
      const got = text.split(encodeField(base)).join('@SCRATCH@');
      if (UPDATE) {
        fs.mkdirSync(GOLDEN, { recursive: true });
        fs.writeFileSync(golden, got);
        return;
      }
      assert.ok(fs.existsSync(golden), `${golden} is missing: TSPOD_UPDATE_GOLDEN=1 make unit writes it`);
      assert.equal(got, fs.readFileSync(golden, 'utf8'), `the plan differs from ${path.relative(REPO, golden)} (after a deliberate change: TSPOD_UPDATE_GOLDEN=1 make unit)`);
    });
  }

  test('a mount of a volume the pod does not have is refused', () => {
    assert.throws(() => plan({ name: 'bad', apps: [{ pod: { name: 'a', app: sh, mounts: [{ volume: 'nope', path: '/x' }] }, files: [] }] }), /^Error: app a: volume nope is not in the pod manifest$/);
  });

  test('a net sysctl with --net=host is refused (the host’s namespace)', () => {
    assert.throws(
      () => plan({ name: 'bad', runtime: { net: 'host' }, isolators: [{ name: 'os/unix/sysctl', value: { 'net.ipv4.ip_forward': '1' } }], apps: [{ pod: { name: 'a', app: sh }, files: [] }] }),
      /net\.ipv4\.ip_forward/,
    );
  });
});
