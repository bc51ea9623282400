// The one place a remedy (native/errors.ts) becomes words. Layers below cmd/ say
// what is wrong in their own terms and name what the user can do about it; only
// the command line knows which flag does that, so the hint naming the flag is
// written here, and cmd/exit.ts prints the line.
import type { Remedy, TspodError } from '../native/errors.js';

/** Each remedy as the command line's advice. */
export const REMEDY_HINTS: Readonly<Record<Remedy, string>> = {
  'allow-pull': 'use --pull-policy=new',
  'allow-plain-http': 'use --insecure-options=http to allow it',
  'try-plain-http': 'if it serves plain http, use --insecure-options=http',
  'accept-any-tls': 'use --insecure-options=tls to accept it anyway',
  'allow-overwrite': 'try --overwrite',
  'choose-data-dir': 'choose another --dir',
  'show-own-manifest': 'its manifest is the one shown without --original',
};

/** err's hint and its remedy's words: either alone, or `hint, or remedy`. */
export function hintFor(err: TspodError): string | undefined {
  const remedy = err.remedy && REMEDY_HINTS[err.remedy];
  if (err.hint && remedy) return `${err.hint}, or ${remedy}`;
  return err.hint ?? remedy;
}

/** The one line shown for err (without the `tspod: ` prefix). */
export function errorLine(err: TspodError): string {
  const hint = hintFor(err);
  return hint ? `${err.message}: ${hint}` : err.message;
}
