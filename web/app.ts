// The admin page: everything the Backups API does, through the official SDK. Bundled by Bun at start.
import PocketBase, { ClientResponseError } from "pocketbase";

const pb = new PocketBase(location.origin);
pb.autoCancellation(false);

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

interface BackupItem {
  key: string;
  size: number;
  modified: string;
}

interface JobEvent {
  kind: string;
  key: string;
  phase: string;
  bytesDone: number;
  bytesTotal: number;
  finishedAt: string | null;
  error: string | null;
}

// ---- formatting ------------------------------------------------------------------------------

export function humanSize(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function humanDate(pbDate: string): string {
  const date = new Date(pbDate.replace(" ", "T"));
  return Number.isNaN(date.getTime()) ? pbDate : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A readable message for any API error: the field messages first, then the general one. */
function describe(error: unknown): string {
  if (error instanceof ClientResponseError) {
    const fields = Object.values((error.response?.data ?? {}) as Record<string, { message?: string }>)
      .map((field) => field?.message)
      .filter(Boolean);
    if (error.status === 0) return "The server cannot be reached.";
    return [error.response?.message ?? error.message, ...fields].filter(Boolean).join(" ");
  }
  return error instanceof Error ? error.message : String(error);
}

function say(message: string) {
  $("notice").textContent = message;
  $("error").textContent = "";
}

function fail(error: unknown) {
  $("error").textContent = describe(error);
  $("notice").textContent = "";
}

/** Asks for confirmation in a dialog that names what will happen; resolves true on "Confirm". */
function confirmAction(text: string, warning = ""): Promise<boolean> {
  const dialog = $<HTMLDialogElement>("confirm");
  $("confirm-text").textContent = text;
  $("confirm-warning").textContent = warning;
  dialog.returnValue = "";
  dialog.showModal();
  $("confirm-ok").focus();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

// ---- views -----------------------------------------------------------------------------------

function showLogin() {
  $("login-view").hidden = false;
  $("app-view").hidden = true;
  $("logout").hidden = true;
  $("login-email").focus();
}

async function showApp() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = false;
  await Promise.all([refreshList(), loadSettings()]);
  void followJobs();
}

async function refreshList() {
  try {
    const items = (await pb.backups.getFullList()) as BackupItem[];
    items.sort((a, b) => b.modified.localeCompare(a.modified));
    const body = $("backups").querySelector("tbody")!;
    body.replaceChildren(...items.map(renderRow));
    $("empty").hidden = items.length > 0;
  } catch (error) {
    handleAuthLoss(error) || fail(error);
  }
}

function renderRow(item: BackupItem): HTMLTableRowElement {
  const row = document.createElement("tr");
  row.dataset.key = item.key;
  const cell = (text: string) => {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  };
  const actions = document.createElement("td");
  const button = (label: string, handler: () => void, danger = false) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.setAttribute("aria-label", `${label} ${item.key}`);
    if (danger) b.className = "danger";
    b.addEventListener("click", handler);
    actions.append(b);
  };
  button("Download", () => void download(item.key));
  button("Verify", () => void verify(item.key));
  button("Restore", () => void restore(item.key), true);
  button("Delete", () => void remove(item.key), true);
  row.append(cell(item.key), cell(humanSize(item.size)), cell(humanDate(item.modified)), actions);
  return row;
}

// ---- actions ---------------------------------------------------------------------------------

async function download(key: string) {
  try {
    // The file token is short-lived and only this URL carries it; the auth token never leaves the SDK.
    const token = await pb.files.getToken();
    const link = document.createElement("a");
    link.href = pb.backups.getDownloadURL(token, key);
    link.download = key;
    document.body.append(link);
    link.click();
    link.remove();
    say(`Downloading ${key}.`);
  } catch (error) {
    fail(error);
  }
}

async function verify(key: string) {
  const output = $("verify-result");
  output.textContent = `Verifying ${key}…`;
  try {
    const result = await pb.send<{ ok: boolean; entries: number; bytes: number; sha256: string; problems: string[] }>(
      `/api/backups/${encodeURIComponent(key)}/verify`,
      { method: "POST" },
    );
    output.textContent = result.ok
      ? `${key} is intact: ${result.entries} entries, ${humanSize(result.bytes)}, SHA-256 ${result.sha256}.`
      : `${key} has problems:\n- ${result.problems.join("\n- ")}`;
  } catch (error) {
    output.textContent = "";
    fail(error);
  }
}

async function remove(key: string) {
  if (!(await confirmAction(`Delete backup ${key}?`, "This cannot be undone."))) return;
  try {
    await pb.backups.delete(key);
    say(`Deleted ${key}.`);
    await refreshList();
  } catch (error) {
    fail(error);
  }
}

/**
 * Set once a restore is under way: its end reloads the page, which then asks for a login. Until then requests
 * refused because the restore rotated the token show nothing; a login form shown meanwhile would be wiped by the
 * reload, together with a login made in it.
 */
let restoring = false;

async function restore(key: string) {
  const warning = "The current data is replaced by the backup's, and everyone is logged out.";
  if (!(await confirmAction(`Restore backup ${key}?`, warning))) return;
  try {
    await pb.backups.restore(key);
    restoring = true;
    say(`Restoring ${key}… the page reloads when the server is idle again.`);
    await waitUntilIdle();
    pb.authStore.clear();
    location.reload();
  } catch (error) {
    fail(error);
  }
}

/** Waits until the restore has run: the server answers again and no job is running. */
async function waitUntilIdle() {
  for (let i = 0; i < 600; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    try {
      const health = await fetch("/api/health", { headers: { Authorization: pb.authStore.token } }).then((r) => r.json());
      // After the restore the old token is no longer valid, so canBackup disappears; true also means idle.
      if (health?.data?.canBackup !== false) return;
    } catch {
      // the server may be busy swapping data: keep waiting
    }
  }
}

async function create(event: SubmitEvent) {
  event.preventDefault();
  const input = $<HTMLInputElement>("create-name");
  $("create-name-error").textContent = "";
  input.removeAttribute("aria-invalid");
  const submit = (event.submitter ?? $("create-form").querySelector("button")) as HTMLButtonElement;
  submit.disabled = true;
  try {
    await pb.backups.create(input.value.trim());
    input.value = "";
    say("Backup created.");
    await refreshList();
  } catch (error) {
    const field = error instanceof ClientResponseError ? (error.response?.data as Record<string, { message: string }>)?.name : undefined;
    if (field) {
      $("create-name-error").textContent = field.message;
      input.setAttribute("aria-invalid", "true");
    } else fail(error);
  } finally {
    submit.disabled = false;
  }
}

function upload(file: File | undefined) {
  if (!file) return fail(new Error("Choose a backup file first."));
  const progress = $<HTMLProgressElement>("upload-progress");
  progress.hidden = false;
  progress.value = 0;
  // XMLHttpRequest, not fetch: only it reports upload progress.
  const request = new XMLHttpRequest();
  request.open("POST", "/api/backups/upload");
  request.setRequestHeader("Authorization", pb.authStore.token);
  request.upload.onprogress = (e) => {
    if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
  };
  request.onload = async () => {
    progress.hidden = true;
    if (request.status === 204) {
      say(`Uploaded ${file.name}.`);
      $<HTMLInputElement>("upload-file").value = "";
      await refreshList();
    } else {
      let body: { message?: string; data?: Record<string, { message?: string }> } = {};
      try {
        body = JSON.parse(request.responseText);
      } catch {
        // not JSON
      }
      const fields = Object.values(body.data ?? {}).map((f) => f?.message).filter(Boolean);
      fail(new Error([body.message ?? `Upload failed (${request.status}).`, ...fields].join(" ")));
    }
  };
  request.onerror = () => {
    progress.hidden = true;
    fail(new Error("The upload failed: the server cannot be reached."));
  };
  const form = new FormData();
  form.append("file", file);
  request.send(form);
}

// ---- live job progress (Server-Sent Events, read through fetch so the token stays in a header) ----

let following = false;

async function followJobs() {
  if (following) return;
  following = true;
  try {
    while (pb.authStore.isValid) {
      try {
        const response = await fetch("/api/jobs/events", { headers: { Authorization: pb.authStore.token } });
        if (!response.ok || !response.body) return;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
            if (data) showJob(JSON.parse(data));
          }
        }
      } catch {
        // connection dropped (for example during a restore): retry below
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } finally {
    following = false;
  }
}

function showJob(job: JobEvent) {
  if (!job || typeof job !== "object" || !("phase" in job)) return;
  const box = $("job");
  const bar = $<HTMLProgressElement>("job-progress");
  box.hidden = false;
  const percent = job.bytesTotal > 0 ? Math.min(100, Math.round((job.bytesDone / job.bytesTotal) * 100)) : job.finishedAt ? 100 : 0;
  bar.value = job.finishedAt && !job.error ? 100 : percent;
  $("job-label").textContent = `${job.kind} ${job.key}: ${job.error ? "failed" : job.phase}`;
  $("job-detail").textContent = job.error ?? `${humanSize(job.bytesDone)} of ${humanSize(job.bytesTotal)}`;
  if (job.finishedAt && !job.error) void refreshList();
}

// ---- settings --------------------------------------------------------------------------------

const TIERS = [
  ["keepLast", "keep-last"],
  ["keepDaily", "keep-daily"],
  ["keepWeekly", "keep-weekly"],
  ["keepMonthly", "keep-monthly"],
] as const;

interface BackupsSettings {
  cron: string;
  cronMaxKeep: number;
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  /** Write-only: sent when typed, never shown; the server answers `encryptionKeySet` instead. */
  encryptionKey?: string;
  encryptionKeySet?: boolean;
  s3: { enabled: boolean; bucket: string; region: string; endpoint: string; accessKey: string; secret?: string; forcePathStyle: boolean };
}

async function loadSettings() {
  try {
    const settings = (await pb.settings.getAll()) as { backups?: BackupsSettings };
    const backups = settings.backups;
    if (!backups) return;
    $<HTMLInputElement>("cron").value = backups.cron ?? "";
    $<HTMLInputElement>("cron-max-keep").value = String(backups.cronMaxKeep ?? 3);
    for (const [field, id] of TIERS) $<HTMLInputElement>(id).value = backups[field] ? String(backups[field]) : "";
    $<HTMLInputElement>("s3-enabled").checked = Boolean(backups.s3?.enabled);
    $<HTMLInputElement>("s3-endpoint").value = backups.s3?.endpoint ?? "";
    $<HTMLInputElement>("s3-bucket").value = backups.s3?.bucket ?? "";
    $<HTMLInputElement>("s3-region").value = backups.s3?.region ?? "";
    $<HTMLInputElement>("s3-access-key").value = backups.s3?.accessKey ?? "";
    $<HTMLInputElement>("s3-force-path-style").checked = Boolean(backups.s3?.forcePathStyle);
    $<HTMLInputElement>("s3-secret").value = ""; // write-only: never shown
    $<HTMLInputElement>("encryption-key").value = "";
    $<HTMLInputElement>("encryption-key").placeholder = backups.encryptionKeySet ? "set (unchanged)" : "not set";
    $("encryption-key-state").textContent = backups.encryptionKeySet ? "New backups are encrypted." : "Backups are not encrypted.";
  } catch (error) {
    fail(error);
  }
}

function settingsFromForm(): BackupsSettings {
  const value = (id: string) => $<HTMLInputElement>(id).value.trim();
  const s3: BackupsSettings["s3"] = {
    enabled: $<HTMLInputElement>("s3-enabled").checked,
    endpoint: value("s3-endpoint"),
    bucket: value("s3-bucket"),
    region: value("s3-region"),
    accessKey: value("s3-access-key"),
    forcePathStyle: $<HTMLInputElement>("s3-force-path-style").checked,
  };
  if (value("s3-secret")) s3.secret = value("s3-secret");
  // An empty tier is sent as 0, which turns it off.
  const tiers = Object.fromEntries(TIERS.map(([field, id]) => [field, Number(value(id) || "0")]));
  const key = $<HTMLInputElement>("encryption-key").value;
  return { cron: value("cron"), cronMaxKeep: Number(value("cron-max-keep") || "3"), ...tiers, ...(key ? { encryptionKey: key } : {}), s3 };
}

function showSettingsErrors(error: unknown): boolean {
  const data = error instanceof ClientResponseError ? (error.response?.data as { backups?: Record<string, unknown> }) : undefined;
  const backups = data?.backups as Record<string, { message?: string } & Record<string, { message?: string }>> | undefined;
  if (!backups) return false;
  $("cron-error").textContent = backups.cron?.message ?? "";
  $("cron-max-keep-error").textContent = backups.cronMaxKeep?.message ?? "";
  $("encryption-key-error").textContent = backups.encryptionKey?.message ?? "";
  $("retention-error").textContent = TIERS.filter(([field]) => backups[field]).map(([field]) => `${field}: ${backups[field]?.message}`).join(" ");
  const s3 = backups.s3 ?? {};
  $("s3-error").textContent = Object.entries(s3).map(([field, e]) => `${field}: ${(e as { message?: string })?.message}`).join(" ");
  return true;
}

async function saveSettings(event: SubmitEvent) {
  event.preventDefault();
  for (const id of ["cron-error", "cron-max-keep-error", "s3-error"]) $(id).textContent = "";
  try {
    await pb.settings.update({ backups: settingsFromForm() });
    say("Settings saved.");
    await Promise.all([loadSettings(), refreshList()]);
  } catch (error) {
    showSettingsErrors(error) || fail(error);
  }
}

async function testS3() {
  try {
    await pb.settings.testS3("backups");
    say("The S3 connection works.");
  } catch (error) {
    fail(error);
  }
}

// ---- wiring ----------------------------------------------------------------------------------

function handleAuthLoss(error: unknown): boolean {
  if (error instanceof ClientResponseError && (error.status === 401 || error.status === 403)) {
    if (restoring) return true;
    pb.authStore.clear();
    showLogin();
    return true;
  }
  return false;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    await pb.collection("_superusers").authWithPassword($<HTMLInputElement>("login-email").value, $<HTMLInputElement>("login-password").value);
    $<HTMLInputElement>("login-password").value = "";
    await showApp();
  } catch (error) {
    $("login-error").textContent = describe(error);
  }
});
$("logout").addEventListener("click", () => {
  pb.authStore.clear();
  showLogin();
});
$("create-form").addEventListener("submit", (event) => void create(event as SubmitEvent));
$("settings-form").addEventListener("submit", (event) => void saveSettings(event as SubmitEvent));
$("test-s3").addEventListener("click", () => void testS3());
$("upload-button").addEventListener("click", () => upload($<HTMLInputElement>("upload-file").files?.[0]));
const zone = $("drop-zone");
zone.addEventListener("dragover", (event) => {
  event.preventDefault();
  zone.classList.add("over");
});
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  upload(event.dataTransfer?.files?.[0]);
});

if (pb.authStore.isValid && pb.authStore.isSuperuser) void showApp();
else showLogin();
