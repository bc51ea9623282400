// What stage0 accepts of a stage1 image's manifest (stage1/contract/pod.ts): an
// init entrypoint, and the one interface version this stage0 speaks. Checked at
// prepare and again before each entrypoint runs (a pod prepared by another
// tspod may record another stage1). Kept apart from stage1.ts, which pulls in
// the fetchers: run-prepared loads only this.
import { TspodError, ErrorCode } from '../native/errors.js';
import { annotationValue, type AppcImageManifest } from '../stage1/contract/appc.js';
import { STAGE1_ANNOTATIONS, STAGE1_INTERFACE_VERSION } from '../stage1/contract/pod.js';

export type { Stage1Entrypoint } from '../stage1/contract/pod.js';

/** Throws unless `m` (the manifest of the stage1 `what` names) is a stage1 this stage0 can run. */
export function checkStage1Manifest(m: AppcImageManifest, what: string): void {
  if (!annotationValue(m, STAGE1_ANNOTATIONS.init)) {
    throw new TspodError(ErrorCode.BadInput, `${what} is not a stage1: its manifest has no ${STAGE1_ANNOTATIONS.init} annotation`);
  }
  const found = annotationValue(m, STAGE1_ANNOTATIONS.interfaceVersion);
  if (found === String(STAGE1_INTERFACE_VERSION)) return;
  const declared = found === undefined ? `declares no interface version (${STAGE1_ANNOTATIONS.interfaceVersion})` : `speaks stage1 interface version ${JSON.stringify(found)}`;
  throw new TspodError(ErrorCode.Unsupported, `${what} ${declared}; this tspod speaks version ${STAGE1_INTERFACE_VERSION}`, {
    hint: 'use a stage1 built for this tspod (make builds bin/stage1.aci)',
  });
}
