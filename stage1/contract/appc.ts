// appc's schemas. ImageManifest is the one internal manifest shape every image in the store
// has (docs/architecture.md, "The store"). OCI and Docker configs are converted into it at fetch time.

export interface NameValue {
  name: string;
  value: string;
}

export interface AppcIsolator {
  name: string;
  value: unknown;
}

export interface AppcMountPoint {
  name: string;
  path: string;
  readOnly?: boolean;
}

export interface AppcPort {
  name: string;
  protocol: string;
  port: number;
  count?: number;
  socketActivated?: boolean;
}

export interface AppcEventHandler {
  name: 'pre-start' | 'post-stop';
  exec: string[];
}

export interface AppcApp {
  exec?: string[];
  user: string;
  group: string;
  supplementaryGIDs?: number[];
  eventHandlers?: AppcEventHandler[];
  workingDirectory?: string;
  environment?: NameValue[];
  isolators?: AppcIsolator[];
  mountPoints?: AppcMountPoint[];
  ports?: AppcPort[];
  userAnnotations?: Record<string, string>;
  userLabels?: Record<string, string>;
}

export interface AppcDependency {
  imageName: string;
  imageID?: string;
  labels?: NameValue[];
  size?: number;
}

export interface AppcImageManifest {
  acKind: 'ImageManifest';
  acVersion: string;
  name: string;
  labels?: NameValue[];
  app?: AppcApp;
  annotations?: NameValue[];
  dependencies?: AppcDependency[];
  pathWhitelist?: string[];
}

/** The appc spec version tspod writes into the manifests it creates. */
export const AC_VERSION = '0.8.11';

export function labelValue(m: AppcImageManifest, name: string): string | undefined {
  return m.labels?.find((l) => l.name === name)?.value;
}

export function annotationValue(m: AppcImageManifest, name: string): string | undefined {
  return m.annotations?.find((a) => a.name === name)?.value;
}
