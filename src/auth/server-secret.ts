import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * The file holding the server half of every token's signing key. It is never put in a backup: a copy of a
 * backup must not be enough to forge tokens for the live server. A restore rotates it, so that every token
 * issued before the restore stops working even when the restored superusers are the same.
 */
export const SERVER_SECRET_FILE = ".pb_secret";

/** Reads the server secret, creating it on first use. */
export async function loadServerSecret(dataDir: string): Promise<string> {
  try {
    const secret = (await readFile(join(dataDir, SERVER_SECRET_FILE), "utf8")).trim();
    if (secret.length >= 32) return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return rotateServerSecret(dataDir);
}

/** Writes a new random server secret (temp name, then rename) and returns it. */
export async function rotateServerSecret(dataDir: string): Promise<string> {
  const secret = randomBytes(32).toString("hex");
  const temp = join(dataDir, `${SERVER_SECRET_FILE}.tmp`);
  await writeFile(temp, secret, { mode: 0o600 });
  await rename(temp, join(dataDir, SERVER_SECRET_FILE));
  return secret;
}
