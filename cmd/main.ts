// tspod's entry point. The global flags are read once, by takeGlobalFlag
// (cmd/global.ts), wherever they stand; then each command gets only its own
// arguments. It loads only what the command needs: `run-prepared` (where
// start-up time is the pod's start time) goes straight to stage0 without the
// argument library; `run` and `prepare` use rkt's own argument parser, and
// `enter` passes everything after the UUID to the command; every other command
// goes through yargs (cmd/cli.ts). Errors end in cmd/exit.ts.
import { COMMAND_WORDS } from './command-words.js';
import { reportError } from './exit.js';
import { defaultGlobals, stripGlobalFlags, takeGlobalFlag, type GlobalArgs } from './global.js';

/**
 * Finds the command word after any global flags (applied to `globals`). As in
 * rkt (cobra), a command's own flags may also stand before its name (`tspod
 * --net=host run IMAGE`): they are moved behind it, so that every command parses
 * them as its own. A word that is not a command name after such a flag is that
 * flag's value.
 */
export function splitCommand(argv: readonly string[], globals: GlobalArgs): { command?: string; rest: string[] } {
  const moved: string[] = [];
  for (let i = 0; i < argv.length; ) {
    const next = takeGlobalFlag(argv, i, globals);
    if (next !== undefined) {
      i = next;
      continue;
    }
    const tok = argv[i];
    if (tok === '--') break;
    if (tok.startsWith('-') || (!COMMAND_WORDS.has(tok) && moved.length)) {
      moved.push(tok);
      i++;
      continue;
    }
    return { command: tok, rest: [...moved, ...argv.slice(i + 1)] };
  }
  return { rest: [...moved] };
}

async function main(argv: string[], globals: GlobalArgs): Promise<number> {
  const { command, rest } = splitCommand(argv, globals);
  // run, prepare and enter read the global flags among their own (their
  // grammars say where flags end); every other command has them taken out here.
  if (command === 'run' || command === 'prepare') {
    const { parsePodArgs } = await import('./podargs.js');
    const parsed = parsePodArgs(rest, command, globals);
    await configureLogging(globals);
    const { prepareOrRun } = await import('./pods.js');
    return prepareOrRun(command, parsed, globals);
  }
  if (command === 'enter') {
    const { enterCommand, parseEnterArgs } = await import('./enter.js');
    const parsed = parseEnterArgs(rest, globals);
    await configureLogging(globals);
    return enterCommand(parsed, globals);
  }
  const own = stripGlobalFlags(rest, globals);
  if (command === 'run-prepared') {
    if (globals.debug) await configureLogging(globals);
    const { fastRunPrepared } = await import('./run-prepared.js');
    const code = fastRunPrepared(own, globals);
    if (code !== undefined) return code;
  }
  await configureLogging(globals);
  const { runCli } = await import('./cli.js');
  return runCli(command === undefined ? own : [command, ...own], globals);
}

/** Loaded when needed: run-prepared does not pay for pino unless it logs (log() configures itself on first use). */
async function configureLogging(globals: GlobalArgs): Promise<void> {
  const log = await import('../native/log.js');
  log.configureLogging({ debug: globals.debug });
}

let settled = false;
// A command whose work stalls with nothing left to wait for must not exit 0 silently.
process.on('beforeExit', () => {
  if (!settled) {
    process.stderr.write('tspod: internal error: the command stopped before finishing (run with --debug and report it)\n');
    process.exit(254);
  }
});

// Filled in as the flags are read: an error while reading them is reported with what was read so far.
const globals = defaultGlobals();
main(process.argv.slice(2), globals).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (err) => {
    settled = true;
    process.exitCode = reportError(err, globals.debug);
  },
);
