export {
  type AlignmentMetrics,
  matmulF64,
  matmulF32,
  alignmentMetrics,
  alignmentFlops,
} from "./kernel.js";
