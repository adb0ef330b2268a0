import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { seedDataDir } from "../support/data-dir.ts";
import { ADMIN_EMAIL, ADMIN_PASSWORD, makeTempDir, startTestServer, waitFor, type TestServer } from "../support/test-server.ts";
import { checkZipIndependently } from "../support/zip-check.ts";

/** Debian's Chromium; .ci/run installs it. Screenshots land in test-artifacts/ for a person to look at. */
const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = resolve(import.meta.dir, "../../test-artifacts");

let server: TestServer;
let browser: Browser;
let page: Page;
let downloads: string;

/** Outside CI a machine may lack Chromium: the browser tests are skipped there, with a note. CI installs it. */
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser) console.log(`note: ${CHROMIUM} is missing (apt-get install chromium); the admin page's browser tests are skipped`);
if (!haveBrowser && process.env.CI) throw new Error(`CI must install Chromium at ${CHROMIUM}`);

beforeAll(async () => {
  if (!haveBrowser) return;
  const dir = await makeTempDir();
  await seedDataDir(dir, { rows: 3000, files: 20 });
  server = await startTestServer({ dir, env: { BACKSTREAM_RESTORE_DELAY_MS: "200" } });
  downloads = await makeTempDir("downloads-");
  await mkdir(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 1400 } });
  page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on("pageerror", (error) => console.error("page error:", error.message));
});
afterAll(async () => {
  if (!haveBrowser) return;
  await browser?.close();
  await server?.close();
  await rm(server.dir, { recursive: true, force: true });
  await rm(downloads, { recursive: true, force: true });
});

const row = (key: string) => page.getByRole("row").filter({ hasText: key });

async function logIn(password = ADMIN_PASSWORD) {
  await page.getByLabel("Email").fill(ADMIN_EMAIL);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
}

describe.skipIf(!haveBrowser)("the admin page in Chromium", () => {
  test("loads without auth, with security headers, showing only the login form", async () => {
    const response = await page.goto(`${server.url}/_/`);
    expect(response!.status()).toBe(200);
    const headers = response!.headers();
    expect(headers["content-security-policy"]).toContain("default-src 'none'");
    expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(headers["x-frame-options"]).toBe("DENY");
    await expect(page.getByLabel("Email").isVisible()).resolves.toBe(true);
    await expect(page.getByRole("button", { name: "Create backup" }).isVisible()).resolves.toBe(false);
  });

  test("a failed login shows its message (typed with the keyboard alone)", async () => {
    await page.getByLabel("Email").focus();
    await page.keyboard.type(ADMIN_EMAIL);
    await page.keyboard.press("Tab");
    await page.keyboard.type("wrong-password");
    await page.keyboard.press("Enter");
    await page.getByText("Failed to authenticate.").waitFor();
    expect(page.url()).not.toContain("token");
  });

  test("log in, create a backup with a live progress bar, see it listed", async () => {
    await logIn();
    await page.getByRole("button", { name: "Log out" }).waitFor();
    // the server's validation message appears next to the field
    await page.getByLabel("Name (optional)").fill("Bad Name.zip");
    await page.getByRole("button", { name: "Create backup" }).click();
    await page.getByText("Must be in a valid format.").waitFor();

    await page.getByLabel("Name (optional)").fill("from_the_page.zip");
    await page.getByRole("button", { name: "Create backup" }).click();
    await row("from_the_page.zip").waitFor();
    // the progress bar, fed by /api/jobs/events, reached the end
    await waitFor(async () => (await page.locator("#job-progress").evaluate((el) => (el as HTMLProgressElement).value)) === 100, "the progress bar to reach 100");
    await expect(page.locator("#job-label").textContent()).resolves.toContain("done");
    await expect(row("from_the_page.zip").textContent()).resolves.toMatch(/\d+(\.\d)? (KB|MB)/);
    await page.screenshot({ path: join(ARTIFACTS, "admin-backups-list.png"), fullPage: true });
  });

  test("download gives a valid zip", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), row("from_the_page.zip").getByRole("button", { name: "Download" }).click()]);
    const path = join(downloads, "from_the_page.zip");
    await download.saveAs(path);
    expect(checkZipIndependently(path)).toContain("No errors detected");
  });

  test("upload it under another name, verify it", async () => {
    const bytes = await readFile(join(downloads, "from_the_page.zip"));
    await page.getByLabel("Backup file (.zip)").setInputFiles({ name: "uploaded_copy.zip", mimeType: "application/zip", buffer: bytes });
    await page.getByRole("button", { name: "Upload backup" }).click();
    await row("uploaded_copy.zip").waitFor();
    await row("uploaded_copy.zip").getByRole("button", { name: "Verify" }).click();
    await page.getByText("uploaded_copy.zip is intact").waitFor();
  });

  test("restore it behind a confirmation, and see the page recover", async () => {
    await row("uploaded_copy.zip").getByRole("button", { name: "Restore" }).click();
    await page.getByText("Restore backup uploaded_copy.zip?").waitFor();
    await page.getByText("everyone is logged out").waitFor();
    // A mark that the reload wipes: the login form must come from the reloaded page, not before it (a login made
    // in a form shown before the reload was lost with it).
    await page.evaluate(() => Object.assign(window, { beforeReload: true }));
    await page.getByRole("button", { name: "Confirm" }).click();
    // the page reloads once the server is idle, and asks for a login again
    await page.getByLabel("Email").waitFor({ timeout: 60000 });
    expect(await page.evaluate(() => "beforeReload" in window)).toBe(false);
    expect(server.ctx.jobs.last?.kind).toBe("restore");
    expect(server.ctx.jobs.last?.error).toBeNull();
    await logIn();
    await row("uploaded_copy.zip").waitFor();
    // the test's own SDK client was logged out by the restore as well
    await server.pb.collection("_superusers").authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  });

  test("the settings panel: the secret is write-only", async () => {
    await page.getByLabel("Cron (UTC)").fill("@daily");
    await page.getByLabel("Keep (the newest scheduled backups)").fill("5");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Settings saved.").waitFor();
    await page.reload();
    await page.getByLabel("Cron (UTC)").waitFor();
    await waitFor(async () => (await page.getByLabel("Cron (UTC)").inputValue()) === "@daily", "the settings to load");
    expect(await page.getByLabel("Secret").inputValue()).toBe("");
    // an API error is shown in words, not swallowed
    await page.getByRole("button", { name: "Test connection" }).click();
    await page.getByRole("alert").filter({ hasText: "S3 storage filesystem is not enabled." }).waitFor();
    await page.locator("#settings-title").scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, "admin-settings.png"), fullPage: true });
  });

  test("the settings panel shows and edits the retention tiers; an empty one is off", async () => {
    await page.getByLabel("Keep one a day, for the last … days").fill("7");
    await page.getByLabel("Keep one a month, for the last … months").fill("6");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Settings saved.").waitFor();
    const saved = (await server.pb.settings.getAll()) as { backups: Record<string, unknown> };
    expect(saved.backups).toMatchObject({ cron: "@daily", cronMaxKeep: 5, keepDaily: 7, keepMonthly: 6 });
    expect(saved.backups).not.toHaveProperty("keepWeekly");
    await page.reload();
    await waitFor(async () => (await page.getByLabel("Keep one a day, for the last … days").inputValue()) === "7", "the tiers to load");
    expect(await page.getByLabel("Keep one a week, for the last … weeks").inputValue()).toBe("");
    // a bad value is named beside the tiers, and nothing is saved
    await page.getByLabel("Keep one a week, for the last … weeks").fill("-1");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByRole("alert").filter({ hasText: "keepWeekly: Must be no less than 0." }).waitFor();
    expect(((await server.pb.settings.getAll()) as { backups: Record<string, unknown> }).backups).not.toHaveProperty("keepWeekly");
  });

  test("the backup key is write-only: typed once, then shown only as set", async () => {
    const key = "a page-typed key of some length";
    await page.getByLabel("Keep one a week, for the last … weeks").fill(""); // the test before left a bad value
    await page.getByLabel("Backup key (AES-256; at least 16 characters)").fill("too short");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByRole("alert").filter({ hasText: "The length must be between 16 and 1024." }).waitFor();
    await page.getByLabel("Backup key (AES-256; at least 16 characters)").fill(key);
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Settings saved.").waitFor();
    await page.reload();
    await page.getByText("New backups are encrypted.").waitFor();
    expect(await page.getByLabel("Backup key (AES-256; at least 16 characters)").inputValue()).toBe("");
    expect(await page.content()).not.toContain(key);
    expect(JSON.stringify(await server.pb.settings.getAll())).not.toContain(key);
    // Off again, so the tests after this one see plain backups.
    await server.pb.settings.update({ backups: { encryptionKey: "" } });
  });

  test("delete behind a confirmation that names the backup", async () => {
    await row("from_the_page.zip").getByRole("button", { name: "Delete" }).click();
    await page.getByText("Delete backup from_the_page.zip?").waitFor();
    await page.getByRole("button", { name: "Confirm" }).click();
    await row("from_the_page.zip").waitFor({ state: "detached" });
    expect((await server.pb.backups.getFullList()).map((b) => b.key)).not.toContain("from_the_page.zip");
  });

  test("log out returns to the login form", async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByLabel("Email").waitFor();
  });
});
