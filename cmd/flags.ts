// tspod's flags as tables, and the one reader of `--name[=value]` tokens.
// Every command line goes through matchFlag: the global flags (cmd/global.ts),
// rkt's pod and app flags (cmd/podargs.ts), enter's and run-prepared's fast
// paths; the yargs commands get their options from the same tables
// (cmd/command.ts). Pure: no I/O, errors are TspodErrors.
import { TspodError, ErrorCode } from '../native/errors.js';

/** value: `--x=V` or `--x V`; list: the same, repeatable; bool: `--x` or `--x=BOOL`, never the next word; number: a value read as a number. */
export type FlagKind = 'value' | 'list' | 'bool' | 'number';

export interface FlagSpec {
  readonly kind: FlagKind;
  readonly describe?: string;
  readonly default?: string | boolean | number;
  readonly choices?: readonly string[];
}

export type FlagTable = Readonly<Record<string, FlagSpec>>;

/** The type of a flag's value as a command receives it: a list is [] when not given, anything else without a default undefined. */
type KindValue<K extends FlagKind> = K extends 'bool' ? boolean : K extends 'list' ? string[] : K extends 'number' ? number : string;
export type FlagValues<T extends FlagTable> = {
  -readonly [N in keyof T]: T[N] extends { default: string | boolean | number } | { kind: 'list' } ? KindValue<T[N]['kind']> : KindValue<T[N]['kind']> | undefined;
};

export interface MatchedFlag {
  name: string;
  value: string | boolean;
  /** The index of the token after the flag (and its value). */
  next: number;
}

/**
 * Reads tokens[i] as a flag of `table`: undefined when it is no `--name` of the
 * table (the caller decides what else it may be). A bool flag never takes the
 * next word as its value (rkt's, Go's pflag); a value flag at the end of the
 * line is refused.
 */
export function matchFlag(tokens: readonly string[], i: number, table: FlagTable): MatchedFlag | undefined {
  const tok = tokens[i];
  if (!tok?.startsWith('--')) return undefined;
  const eq = tok.indexOf('=');
  const name = eq > 0 ? tok.slice(2, eq) : tok.slice(2);
  const spec = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!spec) return undefined;
  const inline = eq > 0 ? tok.slice(eq + 1) : undefined;
  if (spec.kind === 'bool') return { name, value: inline === undefined ? true : parseBool(inline, name), next: i + 1 };
  if (inline !== undefined) return { name, value: inline, next: i + 1 };
  if (i + 1 >= tokens.length) throw new TspodError(ErrorCode.BadInput, `--${name} needs a value`);
  return { name, value: tokens[i + 1], next: i + 2 };
}

/** Go's strconv.ParseBool words, and yes/no. */
export function parseBool(s: string, flag: string): boolean {
  if (/^(true|t|1|yes)$/i.test(s)) return true;
  if (/^(false|f|0|no)$/i.test(s)) return false;
  throw new TspodError(ErrorCode.BadInput, `--${flag}: ${JSON.stringify(s)} is not true or false`);
}

/** Stores a matched flag's value by its kind: a list grows, anything else is replaced. */
export function setFlag(into: Record<string, string | boolean | string[]>, name: string, kind: FlagKind, value: string | boolean): void {
  if (kind === 'list') {
    const list = (into[name] as string[] | undefined) ?? [];
    list.push(String(value));
    into[name] = list;
  } else {
    into[name] = value;
  }
}
