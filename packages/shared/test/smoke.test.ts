import { expect, test } from "vitest";
import * as shared from "@memory-exchange/shared";
test("shared resolves from source", () => { expect(shared).toBeTypeOf("object"); });
