import { defineConfig } from "tsup";

export default defineConfig({
  entry: { cli: "src/cli.ts", index: "src/index.ts", "alignment-worker": "src/alignment/alignment-worker.ts" },
  format: ["esm"],
  target: "node20",
  platform: "node",
  sourcemap: true,
  clean: true,
  dts: { entry: { router: "src/router.ts" } },
  // The binary runs with `node` alone: workspace code is bundled, npm dependencies stay external.
  noExternal: ["@memory-exchange/shared"],
  external: ["better-sqlite3"],
  esbuildOptions(options) {
    options.conditions = ["source"];
  },
  banner: { js: "import { createRequire as __mxCreateRequire } from 'node:module'; const require = __mxCreateRequire(import.meta.url);" },
});
