// The appc schema lives with the stage0 ↔ stage1 contract (stage1/contract/appc.ts),
// a leaf module with no imports, because pods and images share it.
import { TspodError, ErrorCode } from '../../native/errors.js';
import { imagePathProblem } from '../../native/image-fs.js';
import type { AppcApp } from '../../stage1/contract/appc.js';

export * from '../../stage1/contract/appc.js';

/** appc's AC Name: lower-case letters and digits in dash-separated words. */
export const AC_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/**
 * Refuses an app whose paths could point out of its image: a working directory
 * or mount point path that is not absolute or has a `..` component, or a mount
 * point name that is not an AC Name (it names a directory of the pod on the
 * host). Run on every manifest tspod takes in: OCI configs when they are
 * converted, ACI manifests, pod manifests and images at prepare. `what` starts
 * the one-line error (`config of docker://…`, `image "name"`, `--pod-manifest
 * FILE: app x`).
 */
export function checkAppPaths(app: AppcApp | undefined | null, what: string, code: ErrorCode = ErrorCode.BadFormat): void {
  if (!app) return;
  if (app.workingDirectory !== undefined && app.workingDirectory !== '') {
    const why = imagePathProblem(app.workingDirectory);
    if (why) throw new TspodError(code, `${what}: working directory ${JSON.stringify(app.workingDirectory)} ${why}`);
  }
  if (app.mountPoints === undefined || app.mountPoints === null) return;
  if (!Array.isArray(app.mountPoints)) throw new TspodError(code, `${what}: mountPoints must be a list`);
  for (const mp of app.mountPoints as unknown[]) {
    const m = (typeof mp === 'object' && mp !== null ? mp : {}) as { name?: unknown; path?: unknown };
    if (typeof m.name !== 'string' || !AC_NAME.test(m.name)) {
      throw new TspodError(code, `${what}: mount point name ${JSON.stringify(m.name ?? null)} is not an AC Name (lower-case letters, digits and dashes)`);
    }
    const why = imagePathProblem(m.path);
    if (why) throw new TspodError(code, `${what}: mount point ${m.name} path ${JSON.stringify(m.path ?? null)} ${why}`);
  }
}
