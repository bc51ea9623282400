// OCI / Docker image config → appc ImageManifest (store/manifest/convert.ts),
// following docker2aci's conventions.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TspodError, ErrorCode } from '../native/errors.js';
import { annotationValue, labelValue } from '../store/manifest/appc.js';
import { DockerAnnotation, dockerUserToAppc, ociConfigToAppc, sanitizeAcName, toAppcArch } from '../store/manifest/convert.js';
import { parseImageConfig } from '../store/manifest/oci.js';

const MANIFEST_DIGEST = `sha256:${'f'.repeat(64)}`;
const CONFIG_DIGEST = `sha256:${'e'.repeat(64)}`;

// The config.md example of the OCI image spec.
const SPEC_EXAMPLE = {
  created: '2015-10-31T22:22:56.015925234Z',
  author: 'Alyssa P. Hacker <alyspdev@example.com>',
  architecture: 'amd64',
  os: 'linux',
  config: {
    User: 'alice',
    ExposedPorts: { '8080/tcp': {} },
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'FOO=oci_is_a', 'BAR=well_written_spec'],
    Entrypoint: ['/bin/my-app-binary'],
    Cmd: ['--foreground', '--config', '/etc/my-app.d/default.cfg'],
    Volumes: { '/var/job-result-data': {}, '/var/log/my-app-logs': {} },
    WorkingDir: '/home/alice',
    Labels: {
      'com.example.project.git.url': 'https://example.com/project.git',
      'com.example.project.git.commit': '45a939b2999782a3f005621a8d0f29aa387e1d6b',
    },
  },
  rootfs: { diff_ids: [`sha256:${'c'.repeat(64)}`], type: 'layers' },
};

function convert(config: object, names = ['127.0.0.1:5000/busybox:latest'], source = 'docker://127.0.0.1:5000/busybox:latest') {
  return ociConfigToAppc(parseImageConfig(JSON.stringify(config)), { names, source, manifestDigest: MANIFEST_DIGEST, configDigest: CONFIG_DIGEST });
}

describe('ociConfigToAppc', () => {
  test('the OCI spec example', () => {
    const m = convert(SPEC_EXAMPLE, ['quay.io/team/my-app:1.2'], 'docker://quay.io/team/my-app:1.2');
    assert.equal(m.acKind, 'ImageManifest');
    assert.equal(m.name, 'quay.io/team/my-app');
    assert.equal(labelValue(m, 'version'), '1.2');
    assert.equal(labelValue(m, 'os'), 'linux');
    assert.equal(labelValue(m, 'arch'), 'amd64');
    assert.deepEqual(m.app?.exec, ['/bin/my-app-binary', '--foreground', '--config', '/etc/my-app.d/default.cfg']);
    assert.equal(m.app?.user, 'alice');
    assert.equal(m.app?.group, 'alice');
    assert.equal(m.app?.workingDirectory, '/home/alice');
    assert.deepEqual(m.app?.environment, [
      { name: 'PATH', value: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
      { name: 'FOO', value: 'oci_is_a' },
      { name: 'BAR', value: 'well_written_spec' },
    ]);
    assert.deepEqual(m.app?.ports, [{ name: '8080-tcp', protocol: 'tcp', port: 8080 }]);
    assert.deepEqual(m.app?.mountPoints, [
      { name: 'volume-var-job-result-data', path: '/var/job-result-data' },
      { name: 'volume-var-log-my-app-logs', path: '/var/log/my-app-logs' },
    ]);
    assert.equal(annotationValue(m, 'com.example.project.git.url'), 'https://example.com/project.git');
    assert.equal(annotationValue(m, 'com.example.project.git.commit'), '45a939b2999782a3f005621a8d0f29aa387e1d6b');
    assert.equal(annotationValue(m, 'created'), '2015-10-31T22:22:56.015925234Z');
    assert.equal(annotationValue(m, 'authors'), 'Alyssa P. Hacker <alyspdev@example.com>');
    assert.equal(annotationValue(m, DockerAnnotation.registryUrl), 'quay.io');
    assert.equal(annotationValue(m, DockerAnnotation.repository), 'team/my-app');
    assert.equal(annotationValue(m, DockerAnnotation.tag), '1.2');
    assert.equal(annotationValue(m, DockerAnnotation.originalName), 'quay.io/team/my-app:1.2');
    assert.equal(annotationValue(m, DockerAnnotation.imageId), CONFIG_DIGEST);
    assert.equal(annotationValue(m, DockerAnnotation.manifestHash), MANIFEST_DIGEST);
    assert.equal(annotationValue(m, DockerAnnotation.entrypoint), '["/bin/my-app-binary"]');
    assert.equal(annotationValue(m, DockerAnnotation.cmd), '["--foreground","--config","/etc/my-app.d/default.cfg"]');
    assert.equal(new Set(m.annotations!.map((a) => a.name)).size, m.annotations!.length, 'no duplicate annotations');
  });

  test('name and version from a registry name with a port, a digest, or no tag', () => {
    const m = convert({ ...SPEC_EXAMPLE, config: {} });
    assert.equal(m.name, '127.0.0.1:5000/busybox');
    assert.equal(labelValue(m, 'version'), 'latest');
    assert.equal(annotationValue(m, DockerAnnotation.registryUrl), '127.0.0.1:5000');
    assert.equal(annotationValue(m, DockerAnnotation.repository), 'busybox');

    const d = `sha256:${'1'.repeat(64)}`;
    const byDigest = convert(SPEC_EXAMPLE, [`docker.io/library/busybox@${d}`], `docker://docker.io/library/busybox@${d}`);
    assert.equal(byDigest.name, 'docker.io/library/busybox');
    assert.equal(labelValue(byDigest, 'version'), d);
    assert.equal(annotationValue(byDigest, DockerAnnotation.tag), undefined);
    assert.equal(annotationValue(byDigest, DockerAnnotation.repository), 'library/busybox');

    const layout = convert(SPEC_EXAMPLE, ['example.com/app'], 'oci:/tmp/layout:app');
    assert.equal(layout.name, 'example.com/app');
    assert.equal(labelValue(layout, 'version'), 'latest');
    assert.equal(annotationValue(layout, DockerAnnotation.originalName), undefined);
    assert.equal(annotationValue(layout, DockerAnnotation.repository), 'app');
  });

  test('a config without a config section has no app, but Docker annotations', () => {
    const m = convert({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    assert.equal(m.app, undefined);
    assert.equal(labelValue(m, 'arch'), 'aarch64');
    assert.ok(annotationValue(m, DockerAnnotation.repository));
  });

  test('an empty Entrypoint and Cmd leave exec out; duplicate Env names keep the last value', () => {
    const m = convert({ ...SPEC_EXAMPLE, config: { Env: ['A=1', 'B=2', 'A=3', 'C=x=y', 'E='] } });
    assert.equal(m.app?.exec, undefined);
    assert.deepEqual(m.app?.environment, [
      { name: 'A', value: '3' },
      { name: 'B', value: '2' },
      { name: 'C', value: 'x=y' },
      { name: 'E', value: '' },
    ]);
    assert.equal(m.app?.user, '0');
    assert.equal(m.app?.group, '0');
  });

  test('ports: protocols, defaults, ranges, sorting; bad keys are BadFormat', () => {
    const m = convert({ ...SPEC_EXAMPLE, config: { ExposedPorts: { '53/udp': {}, '80': {}, '443/TCP': {}, '7000-7002/tcp': {} } } });
    assert.deepEqual(m.app?.ports, [
      { name: '443-tcp', protocol: 'tcp', port: 443 },
      { name: '53-udp', protocol: 'udp', port: 53 },
      { name: '7000-7002-tcp', protocol: 'tcp', port: 7000, count: 3 },
      { name: '80-tcp', protocol: 'tcp', port: 80 },
    ]);
    assert.throws(
      () => convert({ ...SPEC_EXAMPLE, config: { ExposedPorts: { 'http/tcp': {} } } }),
      (e: unknown) => e instanceof TspodError && e.code === ErrorCode.BadFormat && /exposed port "http\/tcp"/.test(e.line),
    );
    assert.throws(() => convert({ ...SPEC_EXAMPLE, config: { ExposedPorts: { '70000/tcp': {} } } }), /out of range/);
  });

  test('volumes: docker2aci names, duplicates numbered', () => {
    const m = convert({ ...SPEC_EXAMPLE, config: { Volumes: { '/data': {}, '/Data': {}, '/var/lib/my_db/': {}, '/a.b': {} } } });
    assert.deepEqual(m.app?.mountPoints, [
      { name: 'volume-a-b', path: '/a.b' },
      { name: 'volume-data', path: '/Data' },
      { name: 'volume-data-1', path: '/data' },
      { name: 'volume-var-lib-my-db', path: '/var/lib/my_db/' },
    ]);
  });

  test('a Docker config (from a Docker Hub image) converts', () => {
    const docker = {
      architecture: 'amd64',
      os: 'linux',
      created: '2016-10-10T23:04:00.821781828Z',
      docker_version: '1.12.1',
      config: { Hostname: 'x', User: '', Env: ['PATH=/bin'], Cmd: ['sh'], Volumes: null, WorkingDir: '', Entrypoint: ['docker-entrypoint.sh'], OnBuild: [], Labels: {} },
      rootfs: { type: 'layers', diff_ids: [`sha256:${'9'.repeat(64)}`] },
    };
    const m = convert(docker);
    assert.deepEqual(m.app?.exec, ['docker-entrypoint.sh', 'sh']);
    assert.equal(m.app?.workingDirectory, undefined);
    assert.equal(m.app?.mountPoints, undefined);
  });

  test("a label never overrides the converter's own annotations", () => {
    const m = convert({ ...SPEC_EXAMPLE, config: { Labels: { created: 'fake', [DockerAnnotation.manifestHash]: 'fake' } } });
    assert.equal(annotationValue(m, 'created'), SPEC_EXAMPLE.created);
    assert.equal(annotationValue(m, DockerAnnotation.manifestHash), MANIFEST_DIGEST);
  });
});

describe('conversion helpers', () => {
  test('dockerUserToAppc follows docker2aci', () => {
    assert.deepEqual(dockerUserToAppc(undefined), { user: '0', group: '0' });
    assert.deepEqual(dockerUserToAppc(''), { user: '0', group: '0' });
    assert.deepEqual(dockerUserToAppc('1000'), { user: '1000', group: '1000' });
    assert.deepEqual(dockerUserToAppc('nobody'), { user: 'nobody', group: 'nobody' });
    assert.deepEqual(dockerUserToAppc('1000:100'), { user: '1000', group: '100' });
    assert.deepEqual(dockerUserToAppc('www:staff'), { user: 'www', group: 'staff' });
    assert.deepEqual(dockerUserToAppc(':100'), { user: '0', group: '100' });
  });

  test('sanitizeAcName and toAppcArch', () => {
    assert.equal(sanitizeAcName('volume/var/Log'), 'volume-var-log');
    assert.equal(sanitizeAcName('/x/'), 'x');
    assert.equal(toAppcArch('amd64'), 'amd64');
    assert.equal(toAppcArch('386'), 'i386');
    assert.equal(toAppcArch('arm64'), 'aarch64');
    assert.equal(toAppcArch('arm', 'v7'), 'armv7l');
    assert.equal(toAppcArch('arm', 'v6'), 'armv6l');
    assert.equal(toAppcArch('arm'), 'armv6l');
    assert.equal(toAppcArch('ppc64le'), 'ppc64le');
    assert.equal(toAppcArch('riscv64'), 'riscv64');
  });
});
