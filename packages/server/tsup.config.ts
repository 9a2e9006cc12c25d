import { defineConfig } from "tsup";

export default defineConfig({
  entry: { cli: "src/cli.ts", index: "src/index.ts", "alignment-worker": "src/alignment/alignment-worker.ts" },
  format: ["esm"],
  target: "node20",
  platform: "node",
  sourcemap: true,
  clean: true,
  dts: { entry: { router: "src/router.ts" } },
  // The binary runs with `node` alone: workspace code and the ES-module dependencies are bundled, the
  // CommonJS ones (fastify and its plugins, the drivers, prom-client) stay external. V8 keeps the source of
  // every loaded module in memory: bundled, only the parts in use remain, without comments or indentation,
  // which takes about 13 MB off the idle RSS (README, Performance). Stack traces keep function names.
  noExternal: ["@memory-exchange/shared", "zod", "drizzle-orm", "@trpc/server", "superjson"],
  external: ["better-sqlite3"],
  minifyWhitespace: true,
  minifySyntax: true,
  esbuildOptions(options) {
    options.conditions = ["source"];
  },
  banner: { js: "import { createRequire as __mxCreateRequire } from 'node:module'; const require = __mxCreateRequire(import.meta.url);" },
});
