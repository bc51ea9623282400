// tspod's entry point. It loads only what the command needs: `run-prepared`
// (where start-up time is the pod's start time) goes straight to stage0 without
// the argument library; `run` and `prepare` use rkt's own argument parser, and
// `enter` passes everything after the UUID to the command; every
// other command goes through yargs (cmd/cli.ts). Errors end in cmd/exit.ts.
import { reportError } from './exit.js';
import { mergeInsecureOptions, type GlobalArgs } from './global.js';
import { DEFAULT_DIR } from '../store/paths.js';
import { DEFAULT_LOCAL_CONFIG } from '../stage1/contract/pod.js';

/** Every command word (the yargs ones too): a flag before one of these belongs to it. */
const COMMANDS = new Set([
  'run', 'prepare', 'run-prepared', 'enter', 'fetch', 'image', 'list', 'status', 'stop', 'rm', 'gc', 'cat-manifest', 'export', 'version', 'metadata-service',
]);

/**
 * Finds the command word after any global flags. As in rkt (cobra), a command's
 * own flags may also stand before its name (`tspod --net=host run IMAGE`): they
 * are moved behind it, so that every command parses them as its own. A word
 * that is not a command name after such a flag is that flag's value.
 */
export function splitCommand(argv: string[]): { globals: GlobalArgs; command?: string; rest: string[] } {
  const globals: GlobalArgs = { dir: DEFAULT_DIR, debug: false, 'insecure-options': 'none', 'local-config': DEFAULT_LOCAL_CONFIG };
  const moved: string[] = [];
  let insecure: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i];
    const m = /^--(dir|debug|insecure-options|local-config)(?:=(.*))?$/.exec(tok);
    if (m) {
      if (m[1] === 'debug') globals.debug = m[2] === undefined ? true : m[2] === 'true';
      else if (m[1] === 'dir') globals.dir = m[2] ?? argv[++i] ?? '';
      else if (m[1] === 'local-config') globals['local-config'] = m[2] ?? argv[++i] ?? '';
      else insecure = [...insecure, m[2] ?? argv[++i] ?? ''];
      continue;
    }
    if (tok === '--') break;
    if (tok.startsWith('-')) {
      moved.push(tok);
      continue;
    }
    if (!COMMANDS.has(tok) && moved.length) {
      moved.push(tok);
      continue;
    }
    if (insecure.length) globals['insecure-options'] = mergeInsecureOptions(insecure);
    return { globals, command: tok, rest: [...moved, ...argv.slice(i + 1)] };
  }
  if (insecure.length) globals['insecure-options'] = mergeInsecureOptions(insecure);
  return { globals, rest: argv };
}

async function main(argv: string[]): Promise<number> {
  const split = splitCommand(argv);
  if (split.command === 'run-prepared') {
    const { fastRunPrepared } = await import('./run-prepared.js');
    const code = fastRunPrepared(split.rest, split.globals);
    if (code !== undefined) return code;
  }
  if (split.command === 'enter') {
    const { enterCommand } = await import('./enter.js');
    return enterCommand(split.rest, split.globals);
  }
  if (split.command === 'run' || split.command === 'prepare') {
    const { prepareOrRun } = await import('./pods.js');
    return prepareOrRun(split.command, split.rest, split.globals);
  }
  const { runCli } = await import('./cli.js');
  return runCli(argv);
}

let settled = false;
// A command whose work stalls with nothing left to wait for must not exit 0 silently.
process.on('beforeExit', () => {
  if (!settled) {
    process.stderr.write('tspod: internal error: the command stopped before finishing (run with --debug and report it)\n');
    process.exit(254);
  }
});

main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (err) => {
    settled = true;
    process.exitCode = reportError(err);
  },
);
