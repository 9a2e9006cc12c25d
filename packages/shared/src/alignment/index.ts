export {
  type AlignmentMetrics,
  matmulF64,
  matmulF32,
  alignmentMetrics,
  alignmentFlops,
  alignmentKernelBackend,
} from "./kernel.js";
