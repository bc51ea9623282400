// store/ says what is wrong in its own terms: no runtime string in it names a
// command-line flag. What the user can do about an error is a remedy on the
// TspodError (native/errors.ts), and only cmd/remedies.ts turns a remedy into the
// hint that names the flag. Comments may mention flags; string literals and
// template pieces may not.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { REPO } from './util.js';

const FLAG = /--[a-z][a-z-]+/;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every string literal and template piece in a TypeScript file that names a flag, as `file:line: text`. */
export function flagStrings(file: string, text = fs.readFileSync(file, 'utf8')): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) {
      if (FLAG.test(node.text)) {
        const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
        found.push(`${path.relative(REPO, file)}:${line}: ${JSON.stringify(node.text)}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('store/ names no command-line flags', () => {
  test('the scan finds a flag in a string, a template piece and a no-substitution template, not in a comment', () => {
    const text = [
      "// use --comment here, /* or --block */",
      "const a = 'use --dir';",
      'const b = `x ${a} then --pull-policy=new`;',
      'const c = `--overwrite`;',
      "const d = 'a-b -- c';",
    ].join('\n');
    assert.deepEqual(
      flagStrings(path.join(REPO, 'store/x.ts'), text).map((l) => l.replace(/^[^:]*:/, '')),
      ['2: "use --dir"', '3: " then --pull-policy=new"', '4: "--overwrite"'],
    );
  });

  test('no string literal in store/**/*.ts matches /--[a-z][a-z-]+/', () => {
    const files = tsFiles(path.join(REPO, 'store'));
    assert.ok(files.length > 20, `the store sources are at ${REPO}store (found ${files.length} files)`);
    assert.deepEqual(files.flatMap((f) => flagStrings(f)), []);
  });
});
