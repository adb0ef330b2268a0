import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { seedDataDir } from "../support/data-dir.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, call, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";

// Names a client controls, of every shape: the create route's JSON `name`, the upload's file name, and keys
// placed in the backups folder by hand. Each must get the spec's answer (never a 500), and every key that can
// be stored must list, download (its name given back in Content-Disposition), restore and delete.

let server: TestServer;
let seed: Uint8Array;

beforeAll(async () => {
  const dir = await makeTempDir();
  await seedDataDir(dir);
  server = await startTestServer({ dir });
  await server.pb.backups.create("seed.zip");
  seed = new Uint8Array(await readFile(join(dir, "backups", "seed.zip")));
  await server.pb.backups.delete("seed.zip");
});
afterAll(async () => {
  await server.close();
  await rm(server.dir, { recursive: true, force: true });
});

const api = (path: string) => `${server.url}${path}`;
const token = () => server.pb.authStore.token;
const keys = async () => (await server.pb.backups.getFullList()).map((b) => b.key).sort();
/** What the backups folder holds, hidden folders' contents included: a refused request must leave it as it was. */
const backupsFolder = async () => {
  const root = join(server.dir, "backups");
  const listing: Record<string, string[]> = {};
  for (const name of await readdir(root).catch(() => [] as string[])) {
    listing[name] = name.startsWith(".") ? (await readdir(join(root, name)).catch(() => [] as string[])).sort() : [];
  }
  return listing;
};

const unloadable = { data: {}, message: "An error occurred while loading the submitted data.", status: 400 };
const invalid = (field: string, error: object) => ({ data: { [field]: error }, message: "An error occurred while validating the submitted data.", status: 400 });
const createWith = (body: string) => call(api("/api/backups"), { method: "POST", token: token(), headers: { "content-type": "application/json" }, body });

describe("POST /api/backups: a name of every JSON type", () => {
  const wrongTypes: [string, string][] = [
    ["a number", '{"name":12}'],
    ["zero", '{"name":0}'],
    ["a float", '{"name":1.5}'],
    ["true", '{"name":true}'],
    ["false", '{"name":false}'],
    ["an empty array", '{"name":[]}'],
    ["an array of a name", '{"name":["a.zip"]}'],
    ["an empty object", '{"name":{}}'],
    ["an object with toString", '{"name":{"toString":1}}'],
    ["an object with valueOf and toString objects", '{"name":{"valueOf":{},"toString":{}}}'],
    ["a nested object", '{"name":{"a":{"b":[1,{"c":null}]}}}'],
  ];
  for (const [what, body] of wrongTypes) {
    test(`${what} cannot be loaded, as PocketBase: 400, nothing created`, async () => {
      const before = await backupsFolder();
      const res = await createWith(body);
      expect(res.body).toEqual(unloadable);
      expect(res.status).toBe(400);
      expect(await backupsFolder()).toEqual(before);
    });
  }

  const badStrings: [string, string, object][] = [
    ["a 10,000-character string", "a".repeat(10_000), { code: "validation_length_out_of_range", message: "The length must be between 1 and 150.", params: { max: 150, min: 1 } }],
    ["a unicode name", "☃-снимок.zip", { code: "validation_match_invalid", message: "Must be in a valid format." }],
    ["a name with a space", "my backup.zip", { code: "validation_match_invalid", message: "Must be in a valid format." }],
  ];
  for (const [what, name, error] of badStrings) {
    test(`${what} is a validation error on name`, async () => {
      const before = await backupsFolder();
      const res = await createWith(JSON.stringify({ name }));
      expect(res.body).toEqual(invalid("name", error));
      expect(await backupsFolder()).toEqual(before);
    });
  }

  for (const [what, body] of [["an empty string", '{"name":""}'], ["null", '{"name":null}']] as const) {
    test(`${what} generates a name`, async () => {
      const before = await keys();
      const res = await createWith(body);
      expect(res.status).toBe(204);
      const added = (await keys()).filter((k) => !before.includes(k));
      expect(added.length).toBe(1);
      expect(added[0]).toMatch(/^pb_backup_acme_\d{14}\.zip$/);
      await server.pb.backups.delete(added[0]!);
    });
  }
});

/** A multipart upload built by hand, so the file name goes out exactly as given (quotes escaped as RFC 7578 allows). */
function uploadAs(filename: string, bytes: Uint8Array = seed) {
  const boundary = "----hostile-names-boundary";
  const quoted = filename.replace(/[\\"]/g, (c) => `\\${c}`);
  const head = new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoted}"\r\nContent-Type: application/zip\r\n\r\n`);
  const tail = new TextEncoder().encode(`\r\n--${boundary}--\r\n`);
  return call(api("/api/backups/upload"), {
    method: "POST",
    token: token(),
    headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
    body: Buffer.concat([head, bytes, tail]),
  });
}

/** The file name a client takes from Content-Disposition: `filename*` (RFC 6266/5987) when there, else `filename`. */
function dispositionName(header: string): string {
  const extended = /;\s*filename\*=UTF-8''([^;\s]+)/i.exec(header);
  if (extended) return decodeURIComponent(extended[1]!);
  const plain = /;\s*filename=(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header)!;
  return plain[1] !== undefined ? plain[1].replace(/\\(.)/g, "$1") : plain[2]!;
}

const isToken = (key: string) => /^[A-Za-z0-9!#$%&'*+.^_`|~@-]+$/.test(key);

/** Download (headers and bytes), restore (waiting for its outcome) and delete one stored key, as the spec says. */
async function roundTrip(key: string, bytes: Uint8Array) {
  expect(await keys()).toContain(key);
  const response = await fetch(api(`/api/backups/${encodeURIComponent(key)}?token=${await server.pb.files.getToken()}`));
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("application/zip");
  const disposition = response.headers.get("content-disposition")!;
  // Tokens keep PocketBase's exact form; anything else carries an ASCII stand-in and the name itself.
  if (isToken(key)) expect(disposition).toBe(`attachment; filename=${key}`);
  else expect(disposition).toMatch(/^attachment; filename="[\x20-\x21\x23-\x5b\x5d-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9!#$&+.^_`|~%-]+$/);
  expect(dispositionName(disposition)).toBe(key);
  expect(response.headers.get("content-length")).toBe(String(bytes.length));
  expect(Buffer.from(await response.arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);

  const restore = await call(api(`/api/backups/${encodeURIComponent(key)}/restore`), { method: "POST", token: token() });
  expect(restore.status).toBe(204);
  const job = await waitFor(() => {
    const last = server.ctx.jobs.last;
    return last?.kind === "restore" && last.key === key && last.finishedAt ? last : undefined;
  }, `the restore of ${key} to finish`);
  expect(job.error).toBeNull();
  // A restore brings back the backup's superusers and a new token secret: log in again.
  await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);

  const removed = await call(api(`/api/backups/${encodeURIComponent(key)}`), { method: "DELETE", token: token() });
  expect(removed.status).toBe(204);
  expect(await keys()).not.toContain(key);
}

describe("upload names: long, non-ASCII, spaces and quotes", () => {
  const names = [
    "a".repeat(196) + ".zip", // 200 bytes, the most a new key may have
    "ü".repeat(98) + ".zip", // 200 bytes in 102 characters
    "☃-снимок.zip",
    "ünïcødé.zip",
    "my backup (1).zip",
    'quote"d.zip',
    "it's; 100% done.zip",
    "tab-free but ,;=?{} odd.zip",
  ];
  for (const name of names) {
    test(`${JSON.stringify(name.length > 40 ? `${name.slice(0, 12)}… (${Buffer.byteLength(name)} bytes)` : name)}: upload, list, download, restore, delete`, async () => {
      const res = await uploadAs(name);
      expect({ status: res.status, body: res.body }).toEqual({ status: 204, body: null });
      await roundTrip(name, seed);
    });
  }

  test("the exact header for a non-ASCII key and for one with quotes", async () => {
    const headerOf = async (key: string) => {
      expect((await uploadAs(key)).status).toBe(204);
      const response = await fetch(api(`/api/backups/${encodeURIComponent(key)}?token=${await server.pb.files.getToken()}`));
      await response.arrayBuffer();
      await server.pb.backups.delete(key);
      return response.headers.get("content-disposition");
    };
    expect(await headerOf("☃-снимок.zip")).toBe(`attachment; filename="_-______.zip"; filename*=UTF-8''%E2%98%83-%D1%81%D0%BD%D0%B8%D0%BC%D0%BE%D0%BA.zip`);
    expect(await headerOf('a "b" (c).zip')).toBe(`attachment; filename="a _b_ (c).zip"; filename*=UTF-8''a%20%22b%22%20%28c%29.zip`);
  });

  const tooLong = { code: "validation_length_out_of_range", message: "The file name must be at most 200 bytes long.", params: { max: 200 } };
  for (const [what, name] of [
    ["201 bytes", "a".repeat(197) + ".zip"],
    ["250 characters", "b".repeat(246) + ".zip"],
    ["201 bytes of UTF-8 in 103 characters", "é".repeat(98) + "x.zip"],
    ["300 bytes", "c".repeat(296) + ".zip"],
  ] as const) {
    test(`a file name of ${what} is refused on data.file; nothing is stored`, async () => {
      expect(Buffer.byteLength(name)).toBeGreaterThan(200);
      const before = await backupsFolder();
      const res = await uploadAs(name);
      expect(res.body).toEqual(invalid("file", tooLong));
      expect(await backupsFolder()).toEqual(before);
    });
  }
});

describe("keys placed in the backups folder by hand, up to 255 bytes", () => {
  for (const [what, key] of [
    ["255 ASCII bytes", "k".repeat(251) + ".zip"],
    ["255 bytes of UTF-8", "ж".repeat(125) + "x.zip"],
  ] as const) {
    test(`${what}: list, download, verify, restore, delete`, async () => {
      expect(Buffer.byteLength(key)).toBe(255);
      // Its checksum sidecar could not even be named (`<key>.sha256` is over 255 bytes): that is no sidecar.
      await Bun.write(join(server.dir, "backups", key), seed);
      const verify = await call(api(`/api/backups/${encodeURIComponent(key)}/verify`), { method: "POST", token: token() });
      expect(verify.status).toBe(200);
      expect((verify.body as { ok: boolean }).ok).toBe(true);
      await roundTrip(key, seed);
    });
  }

  test("a key over 255 bytes in the path is simply not found", async () => {
    const key = "z".repeat(300) + ".zip";
    const fileToken = await server.pb.files.getToken();
    const notFound = { data: {}, message: "The requested resource wasn't found.", status: 404 };
    expect((await call(api(`/api/backups/${key}?token=${fileToken}`))).body).toEqual(notFound);
    expect((await call(api(`/api/backups/${key}`), { method: "DELETE", token: token() })).body).toEqual(notFound);
    expect((await call(api(`/api/backups/${key}/verify`), { method: "POST", token: token() })).body).toEqual(notFound);
    expect((await call(api(`/api/backups/${key}/restore`), { method: "POST", token: token() })).body).toEqual({ data: {}, message: "Missing or invalid backup file.", status: 400 });
  });
});
