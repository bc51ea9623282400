// The test harness in one import: `import { startRegistry, makeDataDir, … } from './harness/index.js'`.
export * from './paths.js';
export * from './cleanup.js';
export * from './sys.js';
export * from './tree.js';
export * from './fixtures.js';
export * from './registry.js';
export * from './cli.js';
export * from './leaks.js';
