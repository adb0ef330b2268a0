import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { craftZip, tinyDatabase } from "../support/craft-zip.ts";
import { readPosts, seedDataDir } from "../support/data-dir.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, call, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";

// Two requests on one key, fired together over HTTP, many times: every route that uses a key takes the job lock
// (or, for a delete, a reservation of the key) before it looks the key up, so the answers always tell one story.
// A round's answers and the backups it leaves must be those of the two requests run one after the other, in
// some order; and an accepted restore must then succeed (before the fix, a delete slipped in between the
// restore's lookup and its lock: both got 204, and the restore failed "not found").

let server: TestServer;
let oldBytes: Uint8Array;
let newBytes: Uint8Array;
let livePosts: unknown[];

beforeAll(async () => {
  const dir = await makeTempDir();
  await seedDataDir(dir, { rows: 50, files: 3 });
  server = await startTestServer({ dir });
  await server.pb.backups.create("template.zip");
  oldBytes = new Uint8Array(await readFile(join(dir, "backups", "template.zip")));
  await server.pb.backups.delete("template.zip");
  newBytes = craftZip([{ name: "data.db", data: await tinyDatabase() }]);
  livePosts = await readPosts(join(dir, "data.db"));
});
afterAll(async () => {
  await server.close();
  await rm(server.dir, { recursive: true, force: true });
});

type Op = "restore" | "verify" | "delete" | "upload" | "create";
/** What a backup key holds: nothing, the bytes of one of the two uploads, or a backup the server made. */
type Content = "absent" | "old" | "new" | "created";
interface Answer {
  op: Op;
  status: number;
  body: unknown;
}

const RESTORE_ROUNDS = 25;
const ROUNDS = 12;

const busy = { data: {}, message: "Try again later - another backup/restore process has already been started.", status: 400 };
const inUse = { data: {}, message: "The backup is currently being used and cannot be deleted.", status: 400 };
const notFound = { data: {}, message: "The requested resource wasn't found.", status: 404 };
const missing = { data: {}, message: "Missing or invalid backup file.", status: 400 };
const validation = (field: string, message: string) => ({
  data: { [field]: { code: "validation_backup_name_exists", message } },
  message: "An error occurred while validating the submitted data.",
  status: 400,
});
const uploadTaken = validation("file", "Backup file with the specified name already exists.");
const createTaken = validation("name", "The backup file name is invalid or already exists.");

const api = (path: string) => `${server.url}${path}`;
const token = () => server.pb.authStore.token;
const path = (key: string) => `/api/backups/${encodeURIComponent(key)}`;

function send(op: Op, key: string): Promise<Answer> {
  const answer = (res: { status: number; body: unknown }) => ({ op, status: res.status, body: res.body });
  if (op === "restore") return call(api(`${path(key)}/restore`), { method: "POST", token: token() }).then(answer);
  if (op === "verify") return call(api(`${path(key)}/verify`), { method: "POST", token: token() }).then(answer);
  if (op === "delete") return call(api(path(key)), { method: "DELETE", token: token() }).then(answer);
  if (op === "create") {
    return call(api("/api/backups"), { method: "POST", token: token(), headers: { "content-type": "application/json" }, body: JSON.stringify({ name: key }) }).then(answer);
  }
  const form = new FormData();
  form.append("file", new File([newBytes as BlobPart], key));
  return call(api("/api/backups/upload"), { method: "POST", token: token(), body: form }).then(answer);
}

/**
 * One op run alone on a key holding `before`: the answers it may give and what the key holds after each.
 * Refusals that come from the other request holding the lock or the key (busy, in use) change nothing.
 */
function outcomes(op: Op, before: Content): { accepted: boolean; body?: unknown; after: Content }[] {
  const conflict = op === "delete" ? inUse : busy;
  const refusedFor = { restore: missing, verify: notFound, delete: notFound, upload: uploadTaken, create: createTaken }[op];
  const present = before !== "absent";
  const needsPresent = op === "restore" || op === "verify" || op === "delete";
  const runs = needsPresent ? present : !present;
  const after: Content = op === "delete" ? "absent" : op === "upload" ? "new" : op === "create" ? "created" : before;
  return [{ accepted: false, body: conflict, after: before }, runs ? { accepted: true, after } : { accepted: false, body: refusedFor, after: before }];
}

/** Whether some order of the two requests, each run alone, gives exactly these answers and leaves `final`. */
function explainable(initial: Content, answers: Answer[], final: Content): boolean {
  const orders = [answers, [...answers].reverse()];
  return orders.some((order) => {
    let state: Content | undefined = initial;
    for (const answer of order) {
      const accepted = answer.status === 200 || answer.status === 204;
      const match: { after: Content } | undefined = outcomes(answer.op, state).find((o) =>
        o.accepted ? accepted : !accepted && JSON.stringify(o.body) === JSON.stringify(answer.body));
      if (!match) return false;
      state = match.after;
    }
    return state === final;
  });
}

/** What `key` holds now, by listing and, when listed, by its bytes. */
async function contentOf(key: string): Promise<Content> {
  const listed = (await server.pb.backups.getFullList()).some((b) => b.key === key);
  if (!listed) return "absent";
  const response = await fetch(api(`${path(key)}?token=${await server.pb.files.getToken()}`));
  const bytes = Buffer.from(await response.arrayBuffer());
  if (bytes.equals(Buffer.from(oldBytes))) return "old";
  if (bytes.equals(Buffer.from(newBytes))) return "new";
  return "created";
}

/** Puts `content` under `key` through the API (the old archive uploaded), or removes it. */
async function prepare(key: string, content: "absent" | "old"): Promise<void> {
  if ((await contentOf(key)) !== "absent") await server.pb.backups.delete(key);
  if (content === "absent") return;
  const form = new FormData();
  form.append("file", new File([oldBytes as BlobPart], key));
  const res = await call(api("/api/backups/upload"), { method: "POST", token: token(), body: form });
  expect(res.status).toBe(204);
}

/** Restore jobs by GET /api/jobs; a finished restore changes the token secret, so a 401 means log in again. */
const restoreJobs = async (): Promise<{ id: string; kind: string; key: string; finishedAt: string | null; error: string | null }[]> => {
  const res = await call(api("/api/jobs"), { token: token() });
  if (res.status === 401) {
    await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
    return restoreJobs();
  }
  return (res.body as { recent: { id: string; kind: string; key: string; finishedAt: string | null; error: string | null }[] }).recent.filter((j) => j.kind === "restore");
};

/** Fires `ops` on `key` together, in both orders over the rounds, and checks each round's story. */
async function race(ops: [Op, Op], initial: "absent" | "old", rounds: number, key: (round: number) => string) {
  const tally = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    const k = key(round);
    await prepare(k, initial);
    const seen = new Set((await restoreJobs()).map((j) => j.id));
    const order = round % 2 ? [ops[1], ops[0]] : ops;
    const answers = await Promise.all(order.map((op) => send(op, k)));
    const restore = answers.find((a) => a.op === "restore" && a.status === 204);
    if (restore) {
      // The restore runs ~50 ms later, off the request: wait for its outcome before the next round.
      const job = await waitFor(async () => (await restoreJobs()).find((j) => !seen.has(j.id) && j.finishedAt), `the restore of ${k} to finish`);
      expect({ round, error: job.error }).toEqual({ round, error: null });
      await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
      expect(await readPosts(join(server.dir, "data.db"))).toEqual(livePosts);
    } else {
      expect((await restoreJobs()).filter((j) => !seen.has(j.id))).toEqual([]);
    }
    expect(answers.map((a) => a.status)).not.toContain(500);
    const verified = answers.find((a) => a.op === "verify" && a.status === 200);
    if (verified) expect({ round, ok: (verified.body as { ok: boolean }).ok }).toEqual({ round, ok: true });
    const final = await contentOf(k);
    const story = { round, answers, final };
    expect({ ...story, explainable: explainable(initial, answers, final) }).toEqual({ ...story, explainable: true });
    const accepted = answers.filter((a) => a.status === 200 || a.status === 204).map((a) => a.op).join("+") || "none";
    tally.set(accepted, (tally.get(accepted) ?? 0) + 1);
  }
  return tally;
}

describe("two requests on one key, fired together", () => {
  test(`restore + delete of an existing backup, ${RESTORE_ROUNDS} rounds: exactly one is accepted, an accepted restore succeeds`, async () => {
    const tally = await race(["restore", "delete"], "old", RESTORE_ROUNDS, () => "contested.zip");
    expect([...tally.keys()].every((k) => k === "restore" || k === "delete")).toBe(true);
  });

  test(`verify + delete of an existing backup, ${ROUNDS} rounds: one story, an accepted verify finds the backup whole`, async () => {
    await race(["verify", "delete"], "old", ROUNDS, () => "verified.zip");
  });

  test(`upload + create of one new key, ${ROUNDS} rounds: exactly one is accepted`, async () => {
    const tally = await race(["upload", "create"], "absent", ROUNDS, (round) => `fresh-${round}.zip`);
    expect([...tally.keys()].every((k) => k === "upload" || k === "create")).toBe(true);
    for (const item of await server.pb.backups.getFullList()) await server.pb.backups.delete(item.key);
  });

  test(`upload + delete of an existing key, ${ROUNDS} rounds: one story`, async () => {
    await race(["upload", "delete"], "old", ROUNDS, () => "replaced.zip");
  });

  test(`create + delete of an existing key, ${ROUNDS} rounds: one story`, async () => {
    await race(["create", "delete"], "old", ROUNDS, () => "recreated.zip");
  });
});
