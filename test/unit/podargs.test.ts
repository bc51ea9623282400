// rkt's run/prepare command line (cmd/podargs.ts): pod flags, then images each
// followed by its own app flags and `-- args ---`; the volume and mount syntax;
// each bad input refused with one error that says what was wrong.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, TspodError } from '../../native/errors.js';
import { parseEnvList, parseMount, parsePodArgs, parseVolume } from '../../cmd/podargs.js';
import { defaultGlobals } from '../../cmd/global.js';

function refused(tokens: string[], code: ErrorCode, message: RegExp, command: 'run' | 'prepare' = 'run'): void {
  assert.throws(
    () => parsePodArgs(tokens, command),
    (e: unknown) => {
      assert.ok(e instanceof TspodError, `${tokens.join(' ')}: ${String(e)}`);
      assert.equal(e.code, code, `${tokens.join(' ')}: ${e.message}`);
      assert.match(e.message, message, tokens.join(' '));
      return true;
    },
  );
}

describe('podargs: rkt’s per-app syntax', () => {
  test('app flags bind to the image before them; `-- args ---` are that app’s arguments', () => {
    const { spec, global, help } = parsePodArgs(
      ['--dir=/d', 'img1', '--exec=/bin/a', '--', '-x', '--not-a-flag', '---', 'img2', '--name=two', '--environment=A=1', '--', 'y'],
      'run',
    );
    assert.deepEqual(global, { ...defaultGlobals(), dir: '/d' });
    assert.equal(help, false);
    assert.equal(spec.apps.length, 2);
    assert.deepEqual(
      spec.apps.map((a) => [a.image, a.name, a.exec, a.args, a.environment]),
      [
        ['img1', undefined, '/bin/a', ['-x', '--not-a-flag'], []],
        ['img2', 'two', undefined, ['y'], [['A', '1']]],
      ],
    );
  });

  test('pod flags anywhere; lists add up; booleans take =true/false; a value may be the next token', () => {
    const { spec } = parsePodArgs(
      ['--volume=data,kind=empty', 'img', '--set-env', 'A=1', '--set-env=B=2', '--volume', 'host,kind=host,source=/srv', '--inherit-env', '--no-overlay=false', '--net=default', '--net=host'],
      'prepare',
    );
    assert.deepEqual(spec.volumes, [
      { name: 'data', kind: 'empty' },
      { name: 'host', kind: 'host', source: '/srv' },
    ]);
    assert.deepEqual(spec.setEnv, [['A', '1'], ['B', '2']]);
    assert.equal(spec.inheritEnv, true);
    assert.equal(spec.noOverlay, false);
    assert.equal(spec.runtime.net, 'default,host', 'the --net list as given (checked later)');
    assert.equal(spec.pullPolicy, 'new', 'run and prepare default to new');
  });

  test('global flags: --insecure-options given twice adds up; --debug; --local-config', () => {
    const { global } = parsePodArgs(['--insecure-options=image', '--debug', 'img', '--insecure-options=paths', '--local-config=/etc/x'], 'run');
    assert.deepEqual(global, { ...defaultGlobals(), insecureOptions: ['image', 'paths'], debug: true, localConfig: '/etc/x' });
  });

  test('global flags are applied to the globals read before the command (cmd/main.ts) and read as everywhere', () => {
    const globals = { ...defaultGlobals(), dir: '/before', insecureOptions: ['tls'] };
    const { global } = parsePodArgs(['img', '--debug=yes', '--insecure-options=image'], 'run', globals);
    assert.equal(global, globals, 'the same object');
    assert.deepEqual(global, { ...defaultGlobals(), dir: '/before', insecureOptions: ['tls', 'image'], debug: true });
    refused(['--debug=x', 'img'], ErrorCode.BadInput, /^--debug: "x" is not true or false$/);
    refused(['img', '--pull-policy=sometimes'], ErrorCode.BadInput, /^invalid --pull-policy "sometimes"$/);
  });

  test('--mount before any image applies to every app; after one, to that app only', () => {
    const { spec } = parsePodArgs(['--volume=v,kind=empty', '--mount=volume=v,target=/all', 'a', 'b', '--mount', 'volume=v,target=data'], 'run');
    assert.deepEqual(spec.globalMounts, [{ volume: 'v', target: '/all' }]);
    assert.deepEqual(spec.apps[0].mounts, []);
    assert.deepEqual(spec.apps[1].mounts, [{ volume: 'v', target: '/data' }], 'a relative target is below the app’s root');
  });

  test('app isolator flags become the isolators they stand for', () => {
    const { spec } = parsePodArgs(['img', '--caps-retain=net_raw,CAP_CHOWN', '--oom-score-adj=-100', '--memory=64M', '--cpu=500m', '--cpu-shares=512', '--pids-limit=max', '--supplementary-gids=5,6', '--readonly-rootfs'], 'run');
    const app = spec.apps[0];
    assert.deepEqual(app.supplementaryGids, [5, 6]);
    assert.equal(app.readonlyRootfs, true);
    assert.deepEqual(
      app.isolators?.map((i) => i.name),
      ['os/linux/capabilities-retain-set', 'os/linux/oom-score-adj', 'resource/memory', 'resource/cpu', 'os/linux/cpu-shares', 'tspod/pids-limit'],
    );
    assert.deepEqual(app.isolators?.[0].value, { set: ['CAP_NET_RAW', 'CAP_CHOWN'] });
    assert.equal(app.isolators?.[1].value, -100);
  });

  test('--help anywhere; --pod-manifest alone needs no image', () => {
    assert.equal(parsePodArgs(['--help'], 'run').help, true);
    const { spec } = parsePodArgs(['--pod-manifest=/p.json'], 'prepare');
    assert.equal(spec.podManifestFile, '/p.json');
    assert.deepEqual(spec.apps, []);
  });

  test('--quiet is prepare’s; --mds-register is run’s', () => {
    assert.equal(parsePodArgs(['--quiet', 'img'], 'prepare').spec.quiet, true);
    refused(['--quiet', 'img'], ErrorCode.Usage, /^unknown flag --quiet$/, 'run');
    assert.equal(parsePodArgs(['--mds-register', 'img'], 'run').spec.mdsRegister, true);
    refused(['--mds-register', 'img'], ErrorCode.BadInput, /^--mds-register is a flag of run and run-prepared/, 'prepare');
  });
});

describe('podargs: bad input, one error each', () => {
  const cases: Array<[string[], ErrorCode, RegExp]> = [
    [[], ErrorCode.BadInput, /^must provide at least one image or specify the pod manifest$/],
    [['--', 'x'], ErrorCode.BadInput, /^"--" must follow an image$/],
    [['--frobnicate', 'img'], ErrorCode.Usage, /^unknown flag --frobnicate$/],
    [['--stage1-url=x', 'img'], ErrorCode.Unsupported, /^--stage1-url is not supported by this version of tspod$/],
    [['img', '--exec'], ErrorCode.BadInput, /^--exec needs a value$/],
    [['--exec=/bin/sh', 'img'], ErrorCode.BadInput, /^--exec must follow the image it applies to$/],
    [['--inherit-env=maybe', 'img'], ErrorCode.BadInput, /^--inherit-env: "maybe" is not true or false$/],
    [['--pod-manifest=/p', 'img'], ErrorCode.BadInput, /^conflicting flags set with --pod-manifest/],
    [['--stage1-path=/a', '--stage1-name=b', 'img'], ErrorCode.BadInput, /^--stage1-path and --stage1-name cannot be combined$/],
    [['--set-env=1A=x', 'img'], ErrorCode.BadInput, /^--set-env: "1A" is not a valid variable name$/],
    [['--set-env=A=1', '--set-env=A=2', 'img'], ErrorCode.BadInput, /^--set-env: A is set twice$/],
    [['img', '--environment=novalue'], ErrorCode.BadInput, /^--environment: "novalue" is not NAME=VALUE$/],
    [['img', '--caps-retain=CAP_CHOWN', '--caps-remove=CAP_KILL'], ErrorCode.BadInput, /^--caps-retain and --caps-remove cannot be combined$/],
    [['img', '--caps-retain=CAP_FLY'], ErrorCode.BadInput, /^--caps-retain: unknown capability "CAP_FLY"$/],
    [['img', '--caps-remove=,'], ErrorCode.BadInput, /^--caps-remove: no capability given$/],
    [['img', '--oom-score-adj=1001'], ErrorCode.BadInput, /^--oom-score-adj: "1001" is not an integer from -1000 to 1000$/],
    [['img', '--supplementary-gids=5,x'], ErrorCode.BadInput, /^--supplementary-gids: "x" is not a number$/],
    [['img', '--memory=lots'], ErrorCode.BadInput, /^--memory: /],
    [['img', '--pids-limit=many'], ErrorCode.BadInput, /^--pids-limit: /],
    [['img', '--seccomp=mode=sideways'], ErrorCode.BadInput, /^--seccomp: /],
    [['img', '--device=relative'], ErrorCode.BadInput, /^--device /],
    [['img', '--annotation=x'], ErrorCode.BadInput, /^--annotation: "x" is not NAME=VALUE$/],
    [['--port=http:99999', 'img'], ErrorCode.BadInput, /^--port /],
    [['--dns=not-an-ip', 'img'], ErrorCode.BadInput, /dns/i],
    [['--no-store', '--store-only', 'img'], ErrorCode.BadInput, /^both --store-only and --no-store specified$/],
  ];
  for (const [tokens, code, message] of cases) {
    test(`${tokens.join(' ') || '(nothing)'}`, () => refused(tokens, code, message));
  }
});

describe('podargs: volumes and mounts', () => {
  test('appc’s volume syntax, both kinds, with their options', () => {
    assert.deepEqual(parseVolume('data,kind=empty,mode=0750,uid=5,gid=6,readOnly=true'), { name: 'data', kind: 'empty', mode: '0750', uid: 5, gid: 6, readOnly: true });
    assert.deepEqual(parseVolume('src,kind=host,source=/srv/x,readOnly=false,recursive=false'), { name: 'src', kind: 'host', source: '/srv/x', readOnly: false, recursive: false });
  });

  test('bad volumes: each says what is wrong and shows the syntax', () => {
    const bad: Array<[string, RegExp]> = [
      ['kind=host', /it must start with the volume name/],
      ['Data,kind=empty', /"Data" is not a valid name/],
      ['v,kind=host', /kind=host needs source=\/absolute\/path/],
      ['v,kind=host,source=rel', /source "rel" is not an absolute path/],
      ['v,kind=empty,source=/x', /unknown option "source" for kind=empty/],
      ['v,kind=empty,mode=999', /mode "999" is not octal/],
      ['v,kind=empty,uid=-1', /uid "-1" is not a number/],
      ['v,kind=empty,kind=host', /kind given twice/],
      ['v', /kind=host or kind=empty is missing/],
      ['v,kind=tmpfs', /unknown kind "tmpfs"/],
    ];
    for (const [s, why] of bad) {
      assert.throws(
        () => parseVolume(s),
        (e: unknown) => e instanceof TspodError && e.code === ErrorCode.BadInput && e.message.startsWith(`--volume ${JSON.stringify(s)}: `) && why.test(e.message) && /NAME,kind=host/.test(e.hint ?? ''),
        s,
      );
    }
    assert.throws(() => parseVolume('v,kind=empty,readOnly=perhaps'), /^TspodError: --volume readOnly: "perhaps" is not true or false$/);
  });

  test('mounts: volume= and target= only; a target that climbs out of the app is refused', () => {
    assert.deepEqual(parseMount('volume=v,target=/a/b'), { volume: 'v', target: '/a/b' });
    for (const [s, why] of [
      ['volume=v', /target=PATH is missing/],
      ['target=/x', /volume=NAME is missing/],
      ['volume=v,target=/x,mode=ro', /unknown key "mode"/],
      ['volume=v,/x', /"\/x" is not key=value/],
      ['volume=v,target=/a/../../etc', /target "\/a\/..\/..\/etc" /],
    ] as const) {
      assert.throws(() => parseMount(s), (e: unknown) => e instanceof TspodError && e.code === ErrorCode.BadInput && why.test(e.message), s);
    }
  });

  test('parseEnvList keeps the order and the value’s own = signs', () => {
    assert.deepEqual(parseEnvList(['A=1', 'B=x=y', 'C='], '--set-env'), [['A', '1'], ['B', 'x=y'], ['C', '']]);
  });
});
