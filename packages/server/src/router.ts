// Type-only entry for the client SDK: nothing here pulls server code into a bundle.
export type { AppRouter, RouterInputs, RouterOutputs } from "./trpc/root.js";
