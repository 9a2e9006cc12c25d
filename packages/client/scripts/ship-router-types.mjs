// Ships the server's AppRouter declaration inside the client package, so a
// consumer type-checks with the client (and shared) alone: no server package,
// no server dependencies. The server build emits dist/router.d.ts, which only
// imports @memory-exchange/shared and @trpc/server (both client dependencies).
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const serverDir = dirname(require.resolve("@memory-exchange/server/package.json"));
const routerTypes = join(serverDir, "dist", "router.d.ts");
const routerSource = readFileSync(routerTypes, "utf8");
for (const forbidden of ["drizzle-orm", "mysql2", "better-sqlite3", "fastify"]) {
  if (routerSource.includes(`'${forbidden}`) || routerSource.includes(`"${forbidden}`))
    throw new Error(`router.d.ts references ${forbidden}: the client must not depend on server packages`);
}
copyFileSync(routerTypes, "dist/router.d.ts");
const index = readFileSync("dist/index.d.ts", "utf8");
const rewritten = index.replaceAll("'@memory-exchange/server/router'", "'./router.js'");
if (rewritten === index) throw new Error("dist/index.d.ts does not import @memory-exchange/server/router");
writeFileSync("dist/index.d.ts", rewritten);
