// The apps' environment, merged in this order (docs/differences-from-rkt.md,
// "Environment"), lowest to highest:
// the image's environment; --inherit-env (fills only what is still unset);
// --set-env-file; --set-env; the app's own --environment. stage1 then fills the
// defaults (PATH, HOME, USER, LOGNAME, SHELL) and adds AC_APP_NAME and container.
import fs from 'node:fs';
import { TspodError, ErrorCode } from '../native/errors.js';
import type { NameValue } from '../stage1/contract/appc.js';

export interface EnvSources {
  image: NameValue[];
  inherited?: NodeJS.ProcessEnv;
  fromFiles: Array<[string, string]>;
  setEnv: Array<[string, string]>;
  appEnvironment: Array<[string, string]>;
}

export function mergeEnvironment(src: EnvSources): NameValue[] {
  const env = new Map<string, string>();
  for (const { name, value } of src.image) env.set(name, value);
  if (src.inherited) {
    for (const [k, v] of Object.entries(src.inherited)) if (v !== undefined && !env.has(k)) env.set(k, v);
  }
  for (const [k, v] of src.fromFiles) env.set(k, v);
  for (const [k, v] of src.setEnv) env.set(k, v);
  for (const [k, v] of src.appEnvironment) env.set(k, v);
  return [...env].map(([name, value]) => ({ name, value }));
}

/** Reads NAME=VALUE lines; empty lines and lines starting with # or ; are skipped. */
export function readEnvFile(file: string): Array<[string, string]> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, `--set-env-file ${JSON.stringify(file)} cannot be read: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const seen = new Set<string>();
  const out: Array<[string, string]> = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim() || /^\s*[#;]/.test(line)) return;
    const eq = line.indexOf('=');
    const name = eq > 0 ? line.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
      throw new TspodError(ErrorCode.BadInput, `--set-env-file ${file}, line ${i + 1}: expected NAME=VALUE`);
    }
    if (seen.has(name)) throw new TspodError(ErrorCode.BadInput, `--set-env-file ${file}, line ${i + 1}: ${name} is set twice`);
    seen.add(name);
    out.push([name, line.slice(eq + 1)]);
  });
  return out;
}
