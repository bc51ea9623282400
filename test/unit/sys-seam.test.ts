// The system-call seam stays whole: native/sys.ts is the one module that imports
// the koffi bindings (native/libc.ts); every other module of the source tree
// (tests included) reaches system calls through sys(), which the unit tests
// replace with their fake. Scans the TypeScript sources, not the build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from './util.js';

const TREES = ['cmd', 'stage0', 'stage1', 'store', 'native', 'test'];
const BINDINGS = path.join(REPO, 'native', 'libc');
const ALLOWED = path.join(REPO, 'native', 'sys.ts');

function sources(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== path.join(REPO, 'test', 'data') && e.name !== 'node_modules') sources(p, out);
    } else if (e.isFile() && e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The module specifiers a file imports or re-exports, statically or dynamically (comments aside). */
function specifiers(text: string): string[] {
  const out: string[] = [];
  const statements = /^[ \t]*(?:import|export)\b[^;'"]*?(?:\bfrom[ \t]*)?['"]([^'"\n]+)['"]/gm;
  const dynamic = /\b(?:import|require)\(\s*['"]([^'"\n]+)['"]\s*\)/g;
  for (const m of text.matchAll(statements)) out.push(m[1]);
  for (const m of text.matchAll(dynamic)) out.push(m[1]);
  return out;
}

function importsBindings(file: string): boolean {
  return specifiers(fs.readFileSync(file, 'utf8')).some((s) => s.startsWith('.') && path.resolve(path.dirname(file), s).replace(/\.[jt]s$/, '') === BINDINGS);
}

test('only native/sys.ts imports native/libc.ts; everything else calls sys()', () => {
  const files = TREES.flatMap((t) => (fs.existsSync(path.join(REPO, t)) ? sources(path.join(REPO, t)) : []));
  assert.ok(files.includes(ALLOWED), `the source tree was not found under ${REPO}`);
  assert.ok(importsBindings(ALLOWED), 'the scan no longer recognizes native/sys.ts importing native/libc.ts');
  const offenders = files.filter((f) => f !== ALLOWED && importsBindings(f)).map((f) => path.relative(REPO, f));
  assert.deepEqual(offenders, [], 'these import native/libc.ts: call sys() from native/sys.ts instead');
});

test('the scan sees every form of import', () => {
  const forms = [
    "import { flock } from '../native/libc.js';",
    "import {\n  flock,\n  LOCK_EX,\n} from '../native/libc.js';",
    "import * as libc from '../native/libc.js';",
    "export { LOCK_EX } from '../native/libc.js';",
    "import '../native/libc.js';",
    "const { lsetxattr } = await import('../native/libc.js');",
  ];
  for (const form of forms) assert.deepEqual(specifiers(form), ['../native/libc.js'], form);
  assert.deepEqual(specifiers("// a comment naming native/libc.ts from './libc.js'\n * import x from './libc.js' in a doc comment"), []);
});
