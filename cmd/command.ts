// The one place tspod's commands meet yargs. A command is declared as data
// (name, positionals, a flag table of cmd/flags.ts) and a `run` that receives
// typed values and the global flags; yargs only parses and prints help. The
// values are read back from yargs's untyped result by the same tables, so no
// command casts. (yargs 18 ships no typings for its node entry; @types/yargs
// 17 describes the part used here, which 18 did not change.)
import type { Arguments, CommandModule, Options } from 'yargs';
import { matchFlag, type FlagSpec, type FlagTable, type FlagValues } from './flags.js';
import type { GlobalArgs } from './global.js';

export interface PositionalSpec {
  readonly kind: 'value' | 'list';
  readonly required?: boolean;
}
export type PositionalTable = Readonly<Record<string, PositionalSpec>>;

type PositionalValues<P extends PositionalTable> = {
  -readonly [N in keyof P]: P[N] extends { kind: 'list' } ? string[] : P[N] extends { required: true } ? string : string | undefined;
};

export type CommandArgs<F extends FlagTable, P extends PositionalTable> = FlagValues<F> & PositionalValues<P>;

export interface CommandSpec<F extends FlagTable, P extends PositionalTable> {
  name: string;
  aliases?: string[];
  describe: string;
  /** In their order on the command line. */
  positionals?: P;
  flags?: F;
  /** The command's work; what it returns is the exit code (nothing: 0). Errors go to cmd/exit.ts. */
  run(args: CommandArgs<F, P>, globals: GlobalArgs): void | number | Promise<void | number>;
}

/** What a command runs with: the global flags, where its exit code goes, and the command line yargs reads. */
export interface CommandContext {
  globals: GlobalArgs;
  setExit: (code: number) => void;
  argv: readonly string[];
}

/** A command ready for yargs. */
export type Command = (ctx: CommandContext) => CommandModule;

export function command<F extends FlagTable = Record<never, FlagSpec>, P extends PositionalTable = Record<never, PositionalSpec>>(spec: CommandSpec<F, P>): Command {
  const positionals: PositionalTable = spec.positionals ?? {};
  const flags: FlagTable = spec.flags ?? {};
  const words = Object.entries(positionals).map(([n, p]) => {
    const w = p.kind === 'list' ? `${n}..` : n;
    return p.required ? `<${w}>` : `[${w}]`;
  });
  return ({ globals, setExit, argv }) => ({
    command: [spec.name, ...words].join(' '),
    aliases: spec.aliases,
    describe: spec.describe,
    builder: Object.fromEntries(Object.entries(flags).map(([n, f]) => [n, yargsOption(f)])),
    handler: async (a) => {
      const code = await spec.run(readArgs(a, argv, flags, positionals) as CommandArgs<F, P>, globals);
      setExit(code ?? 0);
    },
  });
}

/** A command word with subcommands (`tspod image list`). */
export function commandGroup(name: string, describe: string, subcommands: Command[]): Command {
  return (ctx) => ({
    command: `${name} <command>`,
    describe,
    builder: (y) => subcommands.reduce((acc, c) => acc.command(c(ctx)), y).demandCommand(1, `specify a ${name} subcommand (see tspod ${name} --help)`),
    handler: () => undefined,
  });
}

/**
 * How yargs should read a flag of a table. A list is a string that yargs turns
 * into an array when repeated (not `array: true`, which would also swallow the
 * positionals after it).
 */
export function yargsOption(f: FlagSpec): Options {
  return {
    type: f.kind === 'bool' ? 'boolean' : f.kind === 'number' ? 'number' : 'string',
    ...(f.default !== undefined ? { default: f.default } : {}),
    ...(f.choices ? { choices: f.choices } : {}),
    ...(f.describe ? { describe: f.describe } : {}),
  };
}

/** A bool flag's last `--name=WORD` read by matchFlag (yargs reads any word but true as false). */
function boolWord(argv: readonly string[], name: string): boolean | undefined {
  let value: boolean | undefined;
  const table = { [name]: { kind: 'bool' } } as const;
  for (let i = 0; i < argv.length && argv[i] !== '--'; i++) {
    if (argv[i].startsWith(`--${name}=`)) value = matchFlag(argv, i, table)?.value === true;
  }
  return value;
}

/** The values yargs parsed, by the tables: repeated values of a list collected, of anything else the last one taken; a bool's `=WORD` as matchFlag reads it. */
function readArgs(a: Arguments, argv: readonly string[], flags: FlagTable, positionals: PositionalTable): Record<string, unknown> {
  const all = (v: unknown): string[] => (v === undefined ? [] : ([] as unknown[]).concat(v).map(String));
  const last = <T>(v: T | T[]): T => (Array.isArray(v) ? v[v.length - 1] : v);
  const out: Record<string, unknown> = {};
  for (const [n, f] of Object.entries(flags)) {
    const v = a[n];
    if (f.kind === 'list') out[n] = all(v);
    else if (v === undefined) out[n] = undefined;
    else if (f.kind === 'bool') out[n] = boolWord(argv, n) ?? Boolean(last(v));
    else if (f.kind === 'number') out[n] = Number(last(v));
    else out[n] = String(last(v));
  }
  for (const [n, p] of Object.entries(positionals)) out[n] = p.kind === 'list' ? all(a[n]) : a[n] === undefined ? undefined : String(a[n]);
  return out;
}
