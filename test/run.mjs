// placeholder: replaced by the test harness
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
const files = fs.readdirSync('build/test', { recursive: true }).filter((f) => f.endsWith('.test.js')).map((f) => `build/test/${f}`);
const r = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
