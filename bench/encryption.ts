// Encrypted backups (WinZip AES-256, the key set through the settings) against plain ones on the same server and
// data, taking turns: a first backup each, then a restore of each with the uploads deleted. Default shape only.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { ServerProcess } from "./server-process.ts";
import { backupOnce, forgetIndexes, median, restoreAndLogin, settle } from "./steps.ts";

/** A bench-only key: the settings refuse keys under 16 characters. */
const BENCH_KEY = "bench key, not a secret";

/** Sets (or, with "", clears) the backup encryption key in the server's settings. */
async function setBackupKey(url: string, token: string, key: string): Promise<void> {
  const response = await fetch(`${url}/api/settings`, {
    method: "PATCH",
    headers: { Authorization: token, "content-type": "application/json" },
    body: JSON.stringify({ backups: { encryptionKey: key } }),
  });
  if (response.status !== 200) throw new Error(`setting the backup key failed: ${response.status} ${await response.text()}`);
}

export interface EncryptionResults {
  backupMs: number[];
  plainBackupMs: number[];
  restoreMs: number[];
  plainRestoreMs: number[];
  backupMedianMs: number;
  plainBackupMedianMs: number;
  restoreMedianMs: number;
  plainRestoreMedianMs: number;
  encryptedBackupTime: number;
  encryptedRestoreTime: number;
}

export async function measureEncryption(server: ServerProcess, firstToken: string, work: string, runs: number, log: (line: string) => void): Promise<EncryptionResults> {
  let token = firstToken;
  const e = { backupMs: [] as number[], plainBackupMs: [] as number[], restoreMs: [] as number[], plainRestoreMs: [] as number[] };
  for (let i = 0; i < runs; i++) {
    for (const encrypted of i % 2 === 0 ? [false, true] : [true, false]) {
      await setBackupKey(server.url, token, encrypted ? BENCH_KEY : "");
      const name = `bench_${encrypted ? "enc" : "plain"}_${i}.zip`;
      await forgetIndexes(work);
      await settle();
      (encrypted ? e.backupMs : e.plainBackupMs).push((await backupOnce(server, token, name)).ms);
      await rm(join(work, "storage"), { recursive: true, force: true });
      await settle();
      const { restored, token: next } = await restoreAndLogin(server, name, work, token);
      token = next;
      (encrypted ? e.restoreMs : e.plainRestoreMs).push(restored.ms);
      await rm(join(work, "backups", name), { force: true });
      log(`${encrypted ? "encrypted" : "plain"} ${i}: backup ${(encrypted ? e.backupMs : e.plainBackupMs).at(-1)!.toFixed(0)} ms, restore ${restored.ms.toFixed(0)} ms`);
    }
  }
  await setBackupKey(server.url, token, "");
  const r = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
  return {
    ...e,
    backupMedianMs: median(e.backupMs),
    plainBackupMedianMs: median(e.plainBackupMs),
    restoreMedianMs: median(e.restoreMs),
    plainRestoreMedianMs: median(e.plainRestoreMs),
    encryptedBackupTime: r(median(e.backupMs), median(e.plainBackupMs)),
    encryptedRestoreTime: r(median(e.restoreMs), median(e.plainRestoreMs)),
  };
}
