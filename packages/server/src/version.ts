import { createRequire } from "node:module";

/** The server package version (read once; bundled builds inline package.json). */
export const VERSION: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
