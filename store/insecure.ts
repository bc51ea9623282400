// The security checks a user chose to skip (rkt's --insecure-options, read in
// cmd/global.ts).

export interface InsecureOptions {
  /** Allow plain-HTTP registries and URLs. */
  http: boolean;
  /** Accept any TLS certificate. */
  tls: boolean;
  /** Skip image signature checks. */
  image: boolean;
  /** Stage1 run-time relaxations (passed on by later issues). */
  capabilities: boolean;
  paths: boolean;
  seccomp: boolean;
  /** Run apps whose isolators this version does not apply yet (stage0/isolators.ts). */
  isolators: boolean;
}
