// The README's Layout section matches the tree, so that it cannot drift: every
// top-level directory has an entry (`cmd/   the CLI: ...`), every directory below
// one is named in that entry by its path from it (`layers/`, `unit/golden/`), and
// every directory named there exists. Walks the file system from the repository
// root (no git: make unit-nobody runs this from a copy in /tmp), leaving out
// dot directories, node_modules, the top-level bin and build, the directories .gitignore lists
// (build outputs, test data) and directories that hold no file.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from './util.js';

/** The Layout section's code block: entry name (`cmd/`, `Makefile`, ...) → its text. */
export function layoutEntries(readme: string): Map<string, string> {
  const section = /^## Layout\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  assert.ok(section, 'README.md has a "## Layout" section');
  const block = /^```\n([\s\S]*?)^```/m.exec(section)?.[1];
  assert.ok(block, 'the Layout section has a ``` block');
  const entries = new Map<string, string>();
  let current: string | undefined;
  for (const line of block.split('\n')) {
    if (!line.trim()) continue;
    if (/^\S/.test(line)) {
      const [, name, rest] = /^(\S+)\s*(.*)$/.exec(line)!;
      current = name;
      entries.set(name, rest);
    } else if (current !== undefined) entries.set(current, `${entries.get(current)}\n${line.trim()}`);
  }
  return entries;
}

/** The directory paths an entry's text names: `a/` or `a/b/`, not the `bin/` of `bin/tspod` nor `run/prepare`. */
export function namedDirs(text: string): string[] {
  return [...text.matchAll(/(?<![\w./$-])((?:[\w.-]+\/)+)(?![\w.-])/g)].map((m) => m[1].slice(0, -1));
}

/** What .gitignore leaves out as directories: `dir/` lines (anchored or not). */
function ignoredDirs(root: string): { paths: Set<string>; names: Set<string> } {
  const paths = new Set<string>(['bin', 'build']); // the top-level ones: stage1/build is a source directory
  const names = new Set<string>(['node_modules']);
  const file = path.join(root, '.gitignore');
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line.endsWith('/') || /[*?[!#]/.test(line)) continue;
    const p = line.replace(/^\//, '').replace(/\/$/, '');
    if (line.startsWith('/') || p.includes('/')) paths.add(p);
    else names.add(p);
  }
  return { paths, names };
}

/** Every directory under root that holds a file (at any depth), as paths relative to root, minus the ignored ones. */
export function treeDirs(root: string): string[] {
  const ignored = ignoredDirs(root);
  const out: string[] = [];
  const walk = (rel: string): boolean => {
    let hasFile = false;
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (e.name.startsWith('.') || ignored.names.has(e.name) || ignored.paths.has(r)) continue;
        if (walk(r)) {
          out.push(r);
          hasFile = true;
        }
      } else hasFile = true;
    }
    return hasFile;
  };
  walk('');
  return out.sort();
}

describe('README.md Layout matches the tree', () => {
  const entries = layoutEntries(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8'));
  const tops = [...entries.keys()].filter((n) => n.endsWith('/')).map((n) => n.slice(0, -1));
  const tree = treeDirs(REPO);

  test('the parser: entries, and the directories an entry names', () => {
    const e = layoutEntries('## Layout\n\n```\ncmd/     the CLI: tspod.sh is bin/tspod\n         run/prepare, sub/ and a/b/\nMakefile make\n```\n\n## Next\n');
    assert.deepEqual([...e.keys()], ['cmd/', 'Makefile']);
    assert.deepEqual(namedDirs(e.get('cmd/')!), ['sub', 'a/b']);
  });

  test('every top-level directory has an entry, and every entry that is a directory exists', () => {
    assert.ok(tree.includes('store'), `the tree was not found at ${REPO}`);
    const treeTops = tree.filter((d) => !d.includes('/'));
    assert.deepEqual(treeTops.filter((d) => !tops.includes(d)), [], 'top-level directories without an entry in the README Layout');
    assert.deepEqual(tops.filter((d) => !treeTops.includes(d)), [], 'Layout entries for directories that do not exist (or hold no file)');
  });

  test('every directory under an entry is named in it, by its path from the entry, and every directory named exists', () => {
    for (const top of tops) {
      const named = namedDirs(entries.get(`${top}/`)!);
      const below = tree.filter((d) => d.startsWith(`${top}/`)).map((d) => d.slice(top.length + 1));
      assert.deepEqual(below.filter((d) => !named.includes(d)), [], `directories under ${top}/ that its Layout entry does not name`);
      assert.deepEqual(named.filter((d) => !below.includes(d)), [], `the Layout entry ${top}/ names directories that ${top}/ does not have`);
    }
  });
});
