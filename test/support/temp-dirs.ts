import { afterEach } from "bun:test";
import { rm } from "node:fs/promises";
import { makeTempDir } from "./test-server.ts";

/**
 * `makeTempDir` for a test file whose tests make folders of their own: each one made is removed after the test
 * that made it. Call at the top level of the file.
 */
export function tempDirsRemovedAfterEach(): () => Promise<string> {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  return async () => {
    const dir = await makeTempDir();
    dirs.push(dir);
    return dir;
  };
}
