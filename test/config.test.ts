import { describe, expect, test } from "bun:test";
import { loadConfig } from "../src/config.ts";

describe("loadConfig", () => {
  test("BACKSTREAM_FLUSH_AFTER_MB takes whole MiB, 0 included, and refuses anything else naming the variable", () => {
    expect(loadConfig({}, {}).flushAfterMb).toBeUndefined();
    expect(loadConfig({}, { BACKSTREAM_FLUSH_AFTER_MB: "0" }).flushAfterMb).toBe("0");
    expect(loadConfig({}, { BACKSTREAM_FLUSH_AFTER_MB: "64" }).flushAfterMb).toBe("64");
    for (const bad of ["-1", "1.5", "16MB", " 8"]) {
      expect(() => loadConfig({}, { BACKSTREAM_FLUSH_AFTER_MB: bad })).toThrow("BACKSTREAM_FLUSH_AFTER_MB must be a whole number of MiB");
    }
  });
});
