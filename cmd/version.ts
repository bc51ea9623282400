import pkg from '../package.json' with { type: 'json' };

export const TSPOD_VERSION: string = pkg.version;
