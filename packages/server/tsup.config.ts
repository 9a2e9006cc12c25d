import { defineConfig } from "tsup";

// Loaded from node_modules at run time: better-sqlite3 (a native addon), pino (its transports start worker
// threads on files of its own) and the Swagger UI plugins (they serve files from their own directories;
// loaded on the first /docs request). mysql2 is bundled into a chunk of its own, loaded for MySQL only.
const RUNTIME_DEPENDENCIES = ["better-sqlite3", "pino", "@fastify/swagger", "@fastify/swagger-ui"];

export default defineConfig({
  entry: { cli: "src/cli.ts", index: "src/index.ts", "alignment-worker": "src/alignment/alignment-worker.ts" },
  format: ["esm"],
  target: "node20",
  platform: "node",
  sourcemap: true,
  clean: true,
  dts: { entry: { router: "src/router.ts" } },
  // The binary runs with `node` alone; everything else is bundled. V8 keeps the source, a module record and
  // a resolution of every module it loads (~900 files otherwise): bundled, only the code in use remains,
  // without comments or indentation, which takes 12–15 MB off the idle RSS (README, Performance).
  // Stack traces keep function names; source maps sit next to the bundle.
  noExternal: [new RegExp(`^(?!(${RUNTIME_DEPENDENCIES.join("|")})(/|$))`)],
  external: RUNTIME_DEPENDENCIES,
  minifyWhitespace: true,
  minifySyntax: true,
  esbuildOptions(options) {
    options.conditions = ["source"];
  },
  banner: { js: "import { createRequire as __mxCreateRequire } from 'node:module'; const require = __mxCreateRequire(import.meta.url);" },
});
