// The keys a read job may open an encrypted archive with: the configured one first, then older ones, so that
// changing the key does not make earlier backups unreadable while their key is still listed.
import { WRONG_KEY_PROBLEM } from "../archive/index.ts";
import { EncryptedBackupError } from "../errors.ts";

/**
 * Runs `attempt` with each key in turn (none when `keys` is empty) until one opens the archive. A key that does
 * not open it fails at the archive's key check, before any entry is read or written, so the next try starts clean;
 * any other failure ends the tries. When no key opens it, the answer is the wrong-key error, as for one key.
 */
export async function withEachKey<T>(keys: readonly string[] | undefined, attempt: (key: string | undefined) => Promise<T>): Promise<T> {
  const candidates = keys?.length ? keys : [undefined];
  for (let i = 0; ; i++) {
    try {
      return await attempt(candidates[i]);
    } catch (error) {
      const wrongKey = error instanceof EncryptedBackupError && error.message === WRONG_KEY_PROBLEM;
      if (!wrongKey || i === candidates.length - 1) throw error;
    }
  }
}
