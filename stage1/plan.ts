// Writing the helper's plan (native/helper/PLAN.md): one directive per line,
// fields separated by spaces, each field percent-encoded.

/** The plan's "none" field (a bare `-`), as opposed to a literal dash. */
export const NONE = Symbol('none');

/**
 * Percent-encodes bytes outside `!`..`~` and `%` itself; an empty field is `-E-`;
 * a literal `-` or `-E-` is written with its dash encoded so it is not read as
 * "none" or "empty".
 */
/** A field that needs no encoding: only bytes `!`..`~` other than `%`. */
const PLAIN = /^[!-$&-~]*$/;

export function encodeField(s: string): string {
  if (s === '') return '-E-';
  if (s === '-' || s === '-E-') return `%2D${s.slice(1)}`;
  if (PLAIN.test(s)) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    out += byte > 0x20 && byte < 0x7f && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export class PlanWriter {
  private readonly lines: string[] = [];

  directive(keyword: string, ...fields: Array<string | number | typeof NONE>): this {
    this.lines.push([keyword, ...fields.map((f) => (f === NONE ? '-' : encodeField(String(f))))].join(' '));
    return this;
  }

  comment(text: string): this {
    this.lines.push(`# ${text.replace(/\n/g, ' ')}`);
    return this;
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}
