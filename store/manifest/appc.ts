// The appc schema lives with the stage0 ↔ stage1 contract (stage1/contract/appc.ts),
// a leaf module with no imports, because pods and images share it.
export * from '../../stage1/contract/appc.js';
