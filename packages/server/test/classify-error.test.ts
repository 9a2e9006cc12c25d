import { TRPCError } from "@trpc/server";
import { describe, expect, test } from "vitest";
import { z } from "zod";
import { classifyError } from "../src/trpc/trpc.js";

const zodError = () => z.object({ price: z.number() }).safeParse({ price: "cheap" }).error!;

describe("classifyError", () => {
  test("input that fails its schema is the caller's 400, naming the field", () => {
    for (const error of [zodError(), new TRPCError({ code: "BAD_REQUEST", cause: zodError() })]) {
      const domain = classifyError(error);
      expect(domain.code).toBe("INVALID_INPUT");
      expect(domain.details).toEqual([{ path: "price", message: expect.any(String) }]);
    }
  });

  test("a busy or locked database, extended SQLite codes included, is a retryable 503", () => {
    for (const code of ["SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_LOCKED_SHAREDCACHE", "ER_LOCK_DEADLOCK"]) {
      const domain = classifyError(Object.assign(new Error("driver text"), { code }));
      expect([domain.code, domain.retryAfter, domain.message]).toEqual(["OVERLOADED", 1, "The database is busy; retry"]);
    }
  });

  test("an output that fails its schema (tRPC's output validator) is our 500, with nothing of the schema shown", () => {
    const domain = classifyError(new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "Output validation failed", cause: zodError() }));
    expect(domain.code).toBe("INTERNAL");
    expect(domain.message).toBe("Internal server error");
    expect(domain.details).toBeUndefined();
  });

  test("direct calls wrap a broken output the same way (direct-call.ts)", () => {
    const domain = classifyError(new Error("memory.browse: output validation failed", { cause: zodError() }));
    expect(domain.code).toBe("INTERNAL");
  });
});
