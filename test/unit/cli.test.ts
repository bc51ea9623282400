// tspod's one CLI layer (cmd/flags.ts, cmd/global.ts, cmd/main.ts's split,
// enter's and run-prepared's fast parsers): the global flags read by one function
// wherever they stand, each flag kind read the same way by every command.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, TspodError } from '../../native/errors.js';
import { matchFlag, parseBool } from '../../cmd/flags.js';
import { defaultGlobals, parseInsecureOptions, pullPolicyFromFlags, stripGlobalFlags, takeGlobalFlag } from '../../cmd/global.js';
import { parseEnterArgs } from '../../cmd/enter.js';
import { parseRunPreparedFast } from '../../cmd/run-prepared.js';

function refusedWith(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TspodError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.line, message);
    return true;
  });
}

describe('cli: flags', () => {
  test('matchFlag: value, list and bool flags; a bool never takes the next word; a value flag at the end is refused', () => {
    const table = { net: { kind: 'value' }, dns: { kind: 'list' }, interactive: { kind: 'bool' } } as const;
    assert.deepEqual(matchFlag(['--net=host'], 0, table), { name: 'net', value: 'host', next: 1 });
    assert.deepEqual(matchFlag(['--net', 'host'], 0, table), { name: 'net', value: 'host', next: 2 });
    assert.deepEqual(matchFlag(['--interactive', 'UUID'], 0, table), { name: 'interactive', value: true, next: 1 });
    assert.deepEqual(matchFlag(['--interactive=F'], 0, table), { name: 'interactive', value: false, next: 1 });
    assert.equal(matchFlag(['--other'], 0, table), undefined);
    assert.equal(matchFlag(['UUID'], 0, table), undefined);
    assert.equal(matchFlag(['--constructor'], 0, table), undefined, 'no inherited property is a flag');
    refusedWith(() => matchFlag(['--dns'], 0, table), ErrorCode.BadInput, /^--dns needs a value$/);
  });

  test("parseBool: Go's words and yes/no; any other word is bad input", () => {
    for (const w of ['true', 'TRUE', 't', '1', 'yes']) assert.equal(parseBool(w, 'x'), true, w);
    for (const w of ['false', 'False', 'f', '0', 'no']) assert.equal(parseBool(w, 'x'), false, w);
    refusedWith(() => parseBool('maybe', 'debug'), ErrorCode.BadInput, /^--debug: "maybe" is not true or false$/);
  });

  test('takeGlobalFlag / stripGlobalFlags: applied wherever they stand, up to a `--`', () => {
    const g = defaultGlobals();
    assert.deepEqual(stripGlobalFlags(['--full', '--dir', '/d', 'x', '--debug', '--insecure-options=image', '--insecure-options=tls', '--', '--dir=/no'], g), ['--full', 'x', '--', '--dir=/no']);
    assert.deepEqual(g, { ...defaultGlobals(), dir: '/d', debug: true, insecureOptions: ['image', 'tls'] });
    assert.equal(takeGlobalFlag(['--net=host'], 0, g), undefined);
    refusedWith(() => takeGlobalFlag(['--debug=x'], 0, defaultGlobals()), ErrorCode.BadInput, /^--debug: "x" is not true or false$/);
    refusedWith(() => takeGlobalFlag(['--dir='], 0, defaultGlobals()), ErrorCode.BadInput, /^--dir is empty: give a directory$/);
  });

  test('--insecure-options: lists add up; an unknown word is bad input', () => {
    const o = parseInsecureOptions(['image', 'tls,http']);
    assert.deepEqual([o.image, o.tls, o.http, o.seccomp], [true, true, true, false]);
    assert.equal(parseInsecureOptions(['all-run']).seccomp, true);
    refusedWith(() => parseInsecureOptions(['bogus']), ErrorCode.BadInput, /^unknown --insecure-options value "bogus": /);
  });

  test('--pull-policy and its older names', () => {
    assert.equal(pullPolicyFromFlags({}, 'new'), 'new');
    assert.equal(pullPolicyFromFlags({ storeOnly: true }, 'update'), 'never');
    assert.equal(pullPolicyFromFlags({ noStore: true, pullPolicy: 'update' }, 'new'), 'update');
    refusedWith(() => pullPolicyFromFlags({ pullPolicy: 'bad' }, 'new'), ErrorCode.BadInput, /^invalid --pull-policy "bad": use new, update or never$/);
    refusedWith(() => pullPolicyFromFlags({ noStore: true, storeOnly: true }, 'new'), ErrorCode.BadInput, /^both --store-only and --no-store specified$/);
  });

  test('enter: flags and global flags up to the UUID; everything after it is the command', () => {
    const g = defaultGlobals();
    assert.deepEqual(parseEnterArgs(['--app=a', '--debug', 'U', '--debug', '-c', 'x'], g), { help: false, app: 'a', uuid: 'U', cmd: ['--debug', '-c', 'x'] });
    assert.equal(g.debug, true);
    assert.deepEqual(parseEnterArgs(['U', '--', 'ls'], defaultGlobals()), { help: false, uuid: 'U', cmd: ['ls'] });
    assert.deepEqual(parseEnterArgs(['--uuid-file=/f', 'ls'], defaultGlobals()), { help: false, uuidFile: '/f', cmd: ['ls'] });
    refusedWith(() => parseEnterArgs(['--bogus', 'U'], defaultGlobals()), ErrorCode.Usage, /^unknown flag --bogus/);
  });

  test("run-prepared's fast path: its table's flags; --uuid-file and unknown flags left to yargs; bad values refused", () => {
    const p = parseRunPreparedFast(['--net=none', 'U', '--dns=1.1.1.1', '--dns', '8.8.8.8', '--interactive=false']);
    assert.equal(p?.uuid, 'U');
    assert.deepEqual([p?.flags.net, p?.flags.dns, p?.flags.interactive, p?.flags['hosts-entry']], ['none', ['1.1.1.1', '8.8.8.8'], false, []]);
    assert.equal(parseRunPreparedFast(['--uuid-file=/f']), undefined);
    assert.equal(parseRunPreparedFast(['--help']), undefined);
    assert.equal(parseRunPreparedFast(['U', 'V']), undefined);
    refusedWith(() => parseRunPreparedFast(['--interactive=maybe', 'U']), ErrorCode.BadInput, /^--interactive: "maybe" is not true or false$/);
  });
});

describe('cli: command words', () => {
  test('main.ts knows exactly the commands cli.ts declares (a flag before one of them is moved behind it)', async () => {
    const { CLI_COMMANDS } = await import('../../cmd/cli.js');
    const { COMMAND_WORDS } = await import('../../cmd/command-words.js');
    const ctx = { globals: defaultGlobals(), setExit: () => undefined, argv: [] };
    const declared = CLI_COMMANDS.map((c) => String(c(ctx).command).split(' ')[0]).sort();
    assert.deepEqual([...COMMAND_WORDS].sort(), declared);
  });
});
