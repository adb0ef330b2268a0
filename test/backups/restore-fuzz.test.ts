// Mutants of a backup the server made, through the real server over HTTP: uploaded and restored, or damaged in
// place in the store (local and S3) and restored. Whatever the damage, a restore either fails and leaves the live
// data byte for byte as it was, or ends with exactly the files the archive lists; never a 500.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { INTERNAL_ROOT_ENTRIES } from "../../src/fs/data-dir.ts";
import { listedFiles, assertSameFiles } from "../support/archive-fuzz.ts";
import { hashTree, seedDataDir } from "../support/data-dir.ts";
import { startS3rver, type S3Server } from "../support/s3rver.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, call, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";
import { applyMutations, mutationsArbitrary, type Mutation } from "../support/zip-mutants.ts";

const SEED = 20261206;

/** The live data a restore replaces: every file but the backups, the server's bookkeeping and SQLite's own files. */
const notLiveData = (rel: string) =>
  rel === "backups" || rel === ".pb_temp_to_delete" || INTERNAL_ROOT_ENTRIES.has(rel) || rel.endsWith("-wal") || rel.endsWith("-shm");

const liveFiles = async (server: TestServer) => new Map(Object.entries(await hashTree(server.dir, notLiveData)));

async function seededServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dir = await makeTempDir();
  await seedDataDir(dir, { rows: 300, files: 6 });
  return startTestServer({ dir, env });
}

async function closeServer(server: TestServer | undefined) {
  if (!server) return;
  await server.close();
  await rm(server.dir, { recursive: true, force: true });
}

/** Restores `key` through the API and waits for its job; logs in again after a restore that went through. */
async function restore(server: TestServer, key: string) {
  const answer = await call(`${server.url}/api/backups/${encodeURIComponent(key)}/restore`, { method: "POST", token: server.pb.authStore.token });
  expect(answer.status).toBe(204);
  const job = await waitFor(() => !server.ctx.backups.busy && server.ctx.jobs.last?.kind === "restore" && server.ctx.jobs.last, "the restore to finish");
  if (job.phase === "done") await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  return job;
}

/** The property for one restore of `mutant`: refused with the live data as it was, or exactly what it lists. */
async function expectWholeOutcome(server: TestServer, key: string, mutant: Uint8Array) {
  const before = await liveFiles(server);
  const job = await restore(server, key);
  if (job.phase === "failed") {
    expect(job.error).not.toContain("|"); // a message, never the runtime's source
    expect(await liveFiles(server)).toEqual(before);
  } else {
    const listed = listedFiles(mutant);
    if (!listed) throw new Error(`restored an archive the tests' own zip reader cannot take apart: ${key}`);
    assertSameFiles(await liveFiles(server), listed);
  }
  return job.phase;
}

describe("mutants of a server's backup, uploaded and restored", () => {
  let server: TestServer;
  let base: Uint8Array;
  beforeAll(async () => {
    server = await seededServer();
    await server.pb.backups.create("base.zip");
    base = new Uint8Array(await readFile(join(server.dir, "backups", "base.zip")));
  });
  afterAll(() => closeServer(server));

  test("each upload is refused with a 400 storing nothing, or restores to exactly what it lists", async () => {
    let run = 0;
    const outcomes: Record<string, number> = {};
    const examples: [Mutation[]][] = [[[{ kind: "end-field", field: "count", delta: -1 }]], [[{ kind: "manifest", edit: "drop-item-and-entry", at: 0.6 }]]];
    await fc.assert(
      fc.asyncProperty(mutationsArbitrary, async (mutations) => {
        const mutant = applyMutations(base, mutations);
        const key = `mutant-${run++}.zip`;
        const keysBefore = (await server.pb.backups.getFullList()).map((b) => b.key).sort();
        const form = new FormData();
        form.append("file", new File([mutant as BlobPart], key));
        const upload = await call(`${server.url}/api/backups/upload`, { method: "POST", body: form, token: server.pb.authStore.token });
        if (upload.status === 400) {
          const code = (upload.body as { data: { file?: { code: string } } }).data.file?.code;
          expect(["validation_invalid_backup", "validation_invalid_mime_type"]).toContain(code!);
          expect((await server.pb.backups.getFullList()).map((b) => b.key).sort()).toEqual(keysBefore);
          outcomes.refused = (outcomes.refused ?? 0) + 1;
          return;
        }
        expect(upload.status).toBe(204);
        const phase = await expectWholeOutcome(server, key, mutant);
        outcomes[phase] = (outcomes[phase] ?? 0) + 1;
        await server.pb.backups.delete(key);
      }),
      { seed: SEED, numRuns: 40, examples },
    );
    expect(outcomes.refused).toBeGreaterThan(0);
    expect(outcomes.done).toBeGreaterThan(0); // consistent changes (an entry and its manifest line dropped) restore
  });
});

/** Damage in place: the archive's bytes change, the checksum the store kept beside them stays. */
const damage = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), region: fc.constantFrom("anywhere" as const, "end" as const, "central" as const, "headers" as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant("end-field" as const), field: fc.constantFrom("count" as const, "cd-size" as const, "cd-offset" as const), delta: fc.integer({ min: -70, max: -1 }) }),
    fc.record({ kind: fc.constant("manifest" as const), edit: fc.constantFrom("drop-item-and-entry" as const, "drop-manifest" as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) }),
  ),
  { minLength: 1, maxLength: 2 },
);

const SHA_MISMATCH = "The archive's SHA-256 does not match the one stored with it: the file changed after it was written.";

/** The end-record class of the issue, and a damage every structural rule lets through (an entry and its manifest
 * line dropped together): only the stored SHA-256 tells that archive from the one that was written. */
const IN_PLACE_EXAMPLES: [Mutation[]][] = [
  [[{ kind: "end-field", field: "count", delta: -1 }]],
  [[{ kind: "manifest", edit: "drop-item-and-entry", at: 0.6 }]],
];

/** A copy damaged in place is always refused with the live data as it was; a structurally sound one by its SHA-256
 * (a broken one may be refused by the first structural rule it breaks, read before the whole archive is hashed). */
async function expectRefusedInPlace(server: TestServer, mutations: Mutation[]) {
  const before = await liveFiles(server);
  const job = await restore(server, "kept.zip");
  expect(job.phase).toBe("failed");
  expect(job.error).not.toContain("|");
  const consistent = mutations.length === 1 && mutations[0]!.kind === "manifest" && mutations[0]!.edit === "drop-item-and-entry";
  if (consistent) expect(job.error).toBe(SHA_MISMATCH);
  expect(await liveFiles(server)).toEqual(before);
}

describe("a backup damaged in place in the store, restored through the API", () => {
  test("local store: every damaged copy is refused before anything is replaced (its SHA-256 is not the one kept)", async () => {
    const server = await seededServer();
    try {
      await server.pb.backups.create("kept.zip");
      const path = join(server.dir, "backups", "kept.zip");
      const original = new Uint8Array(await readFile(path));
      await fc.assert(
        fc.asyncProperty(damage, async (mutations) => {
          const mutant = applyMutations(original, mutations);
          fc.pre(Buffer.compare(mutant, original) !== 0);
          await writeFile(path, mutant);
          await expectRefusedInPlace(server, mutations);
        }),
        { seed: SEED, numRuns: 12, examples: IN_PLACE_EXAMPLES },
      );
      // And the intact backup still restores.
      await writeFile(path, original);
      expect(await expectWholeOutcome(server, "kept.zip", original)).toBe("done");
    } finally {
      await closeServer(server);
    }
  });

  test("S3 store: the same, with the checksum kept beside the object in the bucket", async () => {
    let s3: S3Server | undefined;
    let server: TestServer | undefined;
    try {
      s3 = await startS3rver();
      server = await seededServer({
        PB_BACKUPS_S3_ENDPOINT: s3.endpoint, PB_BACKUPS_S3_BUCKET: s3.bucket, PB_BACKUPS_S3_REGION: "us-east-1",
        PB_BACKUPS_S3_ACCESS_KEY: "S3RVER", PB_BACKUPS_S3_SECRET: "S3RVER", PB_BACKUPS_S3_FORCE_PATH_STYLE: "true",
        BACKSTREAM_S3_RETRY_BASE_MS: "20",
      });
      await server.pb.backups.create("kept.zip");
      const client = s3.client();
      const original = new Uint8Array(await new Response(await client.getObject(s3.bucket, "kept.zip") as unknown as ReadableStream).arrayBuffer());
      const before = await liveFiles(server);
      await fc.assert(
        fc.asyncProperty(damage, async (mutations) => {
          const mutant = applyMutations(original, mutations);
          fc.pre(Buffer.compare(mutant, original) !== 0);
          await client.putObject(s3!.bucket, "kept.zip", Buffer.from(mutant));
          await expectRefusedInPlace(server!, mutations);
          expect(await liveFiles(server!)).toEqual(before);
        }),
        { seed: SEED, numRuns: 6, examples: IN_PLACE_EXAMPLES },
      );
    } finally {
      await closeServer(server);
      await s3?.stop();
    }
  });
});
