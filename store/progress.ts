// What the importer reports while it works. cmd/progress.ts draws it on a
// terminal; off a terminal nothing is drawn.

export interface Progress {
  /** A layer's download starts; total is its compressed size (-1 if unknown). */
  start(key: string, label: string, total: number): void;
  /** Bytes of that layer received so far (cumulative). */
  update(key: string, received: number): void;
  /** The layer is done: 'stored' (downloaded and unpacked), 'present' (already in the store), 'failed'. */
  done(key: string, outcome: 'stored' | 'present' | 'failed'): void;
}

export const silentProgress: Progress = {
  start() {},
  update() {},
  done() {},
};
