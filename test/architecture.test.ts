// Keeps the house's shape (docs/architecture.md, /work/shared/STYLE.md): reads every import of every file under
// src/ and workers/ and fails on import cycles, on imports from a lower layer into a higher one, on reaching past
// an archive folder's index.ts face or the store seam, and on Elysia outside the HTTP edge. Failures list the
// offending edges.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");

/**
 * The layers, top to bottom: a file may import its own layer and the layers below it, never one above.
 * Members are files, or folders ending in "/"; the longest match wins, and every file under src/ must match one.
 * - entry: what starts the process and wires the services (the only readers of `Config`).
 * - http: one Elysia instance per controller, and `AppContext`, the services they are given.
 * - backups: the service (create, list, upload, restore orchestration, the scheduler, names, the lock).
 * - jobs: the work a backup, restore or verify does on a job thread, and the tracker of jobs.
 * - settings, auth: the saved settings (with the schedule's and retention's rules), superusers and tokens.
 * - native: the ISA-L bindings, which fill archive/engine's codec interfaces inside the workers.
 * - archive, db, store: the archive format, libSQL access, the backup stores.
 * - leaves: file-system helpers and the data directory's layout, errors, logging, dates, small utilities.
 * Peers within a layer may import each other (the cycle check still applies).
 */
const LAYERS: { name: string; members: string[] }[] = [
  { name: "entry", members: ["src/cli.ts", "src/cli/", "src/server.ts", "src/app.ts", "src/services/", "src/config.ts"] },
  { name: "http", members: ["src/http/", "src/app-context.ts"] },
  { name: "backups", members: ["src/backups/"] },
  { name: "jobs", members: ["src/jobs/"] },
  { name: "settings, auth", members: ["src/settings/", "src/auth/"] },
  { name: "native", members: ["src/native/"] },
  { name: "archive, db, store", members: ["src/archive/", "src/db/", "src/store/"] },
  { name: "leaves", members: ["src/fs/", "src/errors.ts", "src/logger.ts", "src/pb-date.ts", "src/version.ts", "src/uninitialized-bytes.ts", "src/collect-garbage.ts"] },
];

/**
 * Inside src/archive, top to bottom: the face (the files directly in src/archive), then reuse/, engine/, zip/.
 * Only an `index.ts` face is imported across these folders, and code outside src/archive imports only
 * `src/archive/index.ts` or a sub-folder's `index.ts` (workers/ are exempt: they host specific modules).
 */
const ARCHIVE_LAYERS = ["src/archive/", "src/archive/reuse/", "src/archive/engine/", "src/archive/zip/"];

/** The store backends: behind the `BackupStore` seam (store/backup-store.ts), only src/store/ itself names them. */
const STORE_BACKENDS = ["src/store/local-backup-store.ts", "src/store/s3-backup-store.ts"];

/** The files that may import Elysia. */
const ELYSIA_ALLOWED = ["src/app.ts", "src/http/"];

/**
 * Type-only imports (`import type`, `export type`, or `import { type A }` where every name is a type, which Bun
 * drops) count for layers and, separately, for cycles: there are none of either, and a cycle of types alone still
 * ties the modules' designs together. Worker URLs (`new URL("…", import.meta.url)`) are spawn edges: they must
 * name an existing file, but they are not imports (a worker imports the module that starts it, by design).
 */
type EdgeKind = "value" | "type" | "worker-url";

interface Edge {
  from: string;
  to: string;
  kind: EdgeKind;
  specifier: string;
}

interface ScannedFile {
  path: string;
  edges: Edge[];
  packages: { name: string; kind: EdgeKind }[];
  problems: string[];
}

function listFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|tsx|js|mjs)$/.test(entry.name))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)).split("\\").join("/"))
    .sort();
}

/**
 * The code with comments, template literals and regular expressions blanked out and every string literal
 * replaced by `"#<n>"` (its value in `strings[n]`), so that the patterns below only ever see real syntax.
 */
function tokenize(source: string): { code: string; strings: string[] } {
  const strings: string[] = [];
  let code = "";
  let i = 0;
  // The last significant character written, to tell a regular expression's `/` from a division.
  let lastSignificant = "";
  const regexAfter = new Set(["", "(", ",", "=", ":", "[", "!", "&", "|", "?", "{", "}", ";", "+", "-", "*", "%", "<", ">", "~", "^"]);
  const regexAfterWord = /(?:^|[^\w$])(?:return|typeof|case|do|else|in|of|new|delete|void|throw|yield|await)$/;
  const braces: ("code" | "template")[] = [];
  const write = (text: string) => {
    code += text;
    const trimmed = text.trimEnd();
    if (trimmed) lastSignificant = trimmed.at(-1)!;
  };
  const blank = (text: string) => {
    code += text.replace(/[^\n]/g, " ");
  };
  const readQuoted = (quote: string): string => {
    let value = "";
    i++;
    while (i < source.length && source[i] !== quote) {
      if (source[i] === "\\") {
        value += source.slice(i, i + 2);
        i += 2;
      } else value += source[i++];
    }
    i++;
    return value;
  };
  // Scans a template from its opening backtick (or from a `}` that resumes it) to its end or its next `${`.
  const template = () => {
    const start = i;
    i++;
    while (i < source.length) {
      if (source[i] === "\\") i += 2;
      else if (source[i] === "`") {
        i++;
        blank(source.slice(start, i));
        lastSignificant = "`";
        return;
      } else if (source[i] === "$" && source[i + 1] === "{") {
        i += 2;
        blank(source.slice(start, i));
        braces.push("template");
        lastSignificant = "{";
        return;
      } else i++;
    }
    blank(source.slice(start));
  };
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      const end = source.indexOf("\n", i);
      const stop = end < 0 ? source.length : end;
      blank(source.slice(i, stop));
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? source.length : end + 2;
      blank(source.slice(i, stop));
      i = stop;
    } else if (c === "'" || c === '"') {
      strings.push(readQuoted(c));
      write(`"#${strings.length - 1}"`);
    } else if (c === "`") {
      template();
    } else if (c === "/" && (regexAfter.has(lastSignificant) || regexAfterWord.test(code.trimEnd()))) {
      const start = i;
      i++;
      let inClass = false;
      while (i < source.length && source[i] !== "\n") {
        if (source[i] === "\\") i += 2;
        else if (source[i] === "[") (inClass = true), i++;
        else if (source[i] === "]") (inClass = false), i++;
        else if (source[i] === "/" && !inClass) break;
        else i++;
      }
      i++;
      while (i < source.length && /[a-z]/i.test(source[i]!)) i++;
      blank(source.slice(start, i));
      lastSignificant = "/x"; // a regular expression ends like an operand
    } else if (c === "{") {
      braces.push("code");
      write(c);
      i++;
    } else if (c === "}") {
      if (braces.pop() === "template") template();
      else {
        write(c);
        i++;
      }
    } else {
      write(c);
      i++;
    }
  }
  return { code, strings };
}

const STATIC = /(?<![\w$.])(import|export)\s+([\w$*{},\s]*?)\s*\bfrom\s*"#(\d+)"/g;
const SIDE_EFFECT = /(?<![\w$.])import\s*"#(\d+)"/g;
const DYNAMIC = /(?<![\w$.])import\s*\(\s*"#(\d+)"\s*\)/g;
const ANY_DYNAMIC = /(?<![\w$.])import\s*\(/g;
const WORKER_URL = /(?<![\w$.])new\s+URL\s*\(\s*"#(\d+)"\s*,\s*import\.meta\.url\s*\)/g;

/** Whether an import or export clause names types only: `type …`, or `{ type A, type B }`. */
function typeOnly(clause: string): boolean {
  const text = clause.trim();
  if (/^type\s/.test(text)) return true;
  const named = /^\{([^}]*)\}$/.exec(text);
  if (!named) return false;
  const names = named[1]!.split(",").map((name) => name.trim()).filter(Boolean);
  return names.length > 0 && names.every((name) => /^type\s/.test(name));
}

function resolveSpecifier(from: string, specifier: string): string | undefined {
  const base = resolve(ROOT, dirname(from), specifier);
  const found = [base, `${base}.ts`, join(base, "index.ts")].find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
  return found === undefined ? undefined : relative(ROOT, found).split("\\").join("/");
}

const transpiler = new Bun.Transpiler({ loader: "tsx" });

function scan(path: string): ScannedFile {
  // A `#!` line is blanked: neither scanner reads it.
  const source = readFileSync(join(ROOT, path), "utf8").replace(/^#!.*/, "");
  const { code, strings } = tokenize(source);
  const file: ScannedFile = { path, edges: [], packages: [], problems: [] };
  const add = (specifier: string, kind: EdgeKind) => {
    if (!specifier.startsWith(".")) {
      file.packages.push({ name: specifier, kind });
      return;
    }
    const to = resolveSpecifier(path, specifier);
    if (to) file.edges.push({ from: path, to, kind, specifier });
    else file.problems.push(`${path}: "${specifier}" names no file`);
  };
  for (const m of code.matchAll(STATIC)) add(strings[Number(m[3])]!, typeOnly(m[2]!) ? "type" : "value");
  for (const m of code.matchAll(SIDE_EFFECT)) add(strings[Number(m[1])]!, "value");
  for (const m of code.matchAll(DYNAMIC)) add(strings[Number(m[1])]!, "value");
  for (const m of code.matchAll(WORKER_URL)) add(strings[Number(m[1])]!, "worker-url");
  const literalDynamic = [...code.matchAll(DYNAMIC)].length;
  if ([...code.matchAll(ANY_DYNAMIC)].length !== literalDynamic) file.problems.push(`${path}: an import() without a string literal cannot be checked`);

  // The scanner must find exactly the value imports Bun's own parser finds (Bun drops the type-only ones).
  const ours = [...file.edges.filter((e) => e.kind === "value").map((e) => e.specifier), ...file.packages.filter((p) => p.kind === "value").map((p) => p.name)];
  const bun = transpiler.scanImports(source).map((entry) => entry.path);
  const missed = [...new Set(bun)].filter((s) => !ours.includes(s));
  const invented = [...new Set(ours)].filter((s) => !bun.includes(s));
  if (missed.length) file.problems.push(`${path}: the scanner missed ${missed.join(", ")}`);
  if (invented.length) file.problems.push(`${path}: the scanner found value imports Bun does not: ${invented.join(", ")}`);
  return file;
}

/** The entry of `groups` that holds `path`: the longest file or folder match. */
function groupOf(path: string, groups: string[]): string | undefined {
  return groups
    .filter((member) => (member.endsWith("/") ? path.startsWith(member) : path === member))
    .sort((a, b) => b.length - a.length)[0];
}

function layerOf(path: string): number {
  const members = LAYERS.flatMap((layer) => layer.members);
  const member = groupOf(path, members);
  return member === undefined ? -1 : LAYERS.findIndex((layer) => layer.members.includes(member));
}

function archiveLayerOf(path: string): number {
  const folder = groupOf(path, ARCHIVE_LAYERS);
  return folder === undefined ? -1 : ARCHIVE_LAYERS.indexOf(folder);
}

function describeEdge(edge: Edge, why?: string): string {
  return `${edge.from} → ${edge.to}${edge.kind === "type" ? " (type only)" : ""}${why ? `: ${why}` : ""}`;
}

/** Strongly connected components of more than one file (or a file importing itself), each as one cycle's path. */
function cycles(nodes: string[], edges: Edge[]): string[] {
  const out = new Map<string, string[]>();
  for (const node of nodes) out.set(node, []);
  for (const edge of edges) out.get(edge.from)?.push(edge.to);
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string) => {
    indices.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of out.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, indices.get(next)!));
    }
    if (low.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (out.get(node) ?? []).includes(node)) components.push(component);
    }
  };
  for (const node of nodes) if (!indices.has(node)) visit(node);
  // One concrete cycle per component: the shortest way from its first file back to it.
  return components.map((component) => {
    const inside = new Set(component);
    const start = component.sort()[0]!;
    const previous = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const node = queue.shift()!;
      for (const next of out.get(node) ?? []) {
        if (!inside.has(next)) continue;
        if (next === start) {
          const path = [start];
          for (let at: string | undefined = node; at !== undefined && at !== start; at = previous.get(at)) path.splice(1, 0, at);
          return [...path, start].join(" → ");
        }
        if (!previous.has(next)) {
          previous.set(next, node);
          queue.push(next);
        }
      }
    }
    return component.join(", ");
  });
}

const files = [...listFiles("src"), ...listFiles("workers")].map(scan);
const edges = files.flatMap((file) => file.edges);
const imports = edges.filter((edge) => edge.kind !== "worker-url");
const srcFiles = files.map((file) => file.path).filter((path) => path.startsWith("src/"));

describe("architecture", () => {
  test("every import is read and names a file", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.flatMap((file) => file.problems)).toEqual([]);
  });

  test("every file under src/ belongs to a layer", () => {
    expect(srcFiles.filter((path) => layerOf(path) < 0)).toEqual([]);
  });

  test("no import cycles among value imports", () => {
    expect(cycles(srcFiles, imports.filter((edge) => edge.kind === "value" && edge.to.startsWith("src/")))).toEqual([]);
  });

  test("no import cycles with type-only imports counted too", () => {
    expect(cycles(srcFiles, imports.filter((edge) => edge.to.startsWith("src/")))).toEqual([]);
  });

  test("no import from a lower layer into a higher one", () => {
    const upward = imports
      .filter((edge) => edge.from.startsWith("src/") && edge.to.startsWith("src/"))
      .filter((edge) => layerOf(edge.to) >= 0 && layerOf(edge.to) < layerOf(edge.from))
      .map((edge) => describeEdge(edge, `${LAYERS[layerOf(edge.from)]!.name} imports ${LAYERS[layerOf(edge.to)]!.name}`));
    expect(upward).toEqual([]);
  });

  test("src/ never imports workers/ (it starts them by URL)", () => {
    expect(imports.filter((edge) => edge.from.startsWith("src/") && edge.to.startsWith("workers/")).map((edge) => describeEdge(edge))).toEqual([]);
  });

  test("inside src/archive, the face, reuse/, engine/ and zip/ import only downwards, through index.ts faces", () => {
    const wrong = imports
      .filter((edge) => edge.from.startsWith("src/archive/") && edge.to.startsWith("src/archive/"))
      .flatMap((edge) => {
        const from = archiveLayerOf(edge.from);
        const to = archiveLayerOf(edge.to);
        if (to < from) return [describeEdge(edge, `${ARCHIVE_LAYERS[from]} imports ${ARCHIVE_LAYERS[to]}`)];
        if (to !== from && to > 0 && !edge.to.endsWith("/index.ts")) return [describeEdge(edge, `import ${ARCHIVE_LAYERS[to]}index.ts instead`)];
        return [];
      });
    expect(wrong).toEqual([]);
  });

  test("code outside src/archive imports only its index.ts faces (workers/ exempt)", () => {
    const faces = ARCHIVE_LAYERS.map((folder) => `${folder}index.ts`);
    const past = imports
      .filter((edge) => edge.from.startsWith("src/") && !edge.from.startsWith("src/archive/") && edge.to.startsWith("src/archive/"))
      .filter((edge) => !faces.includes(edge.to))
      .map((edge) => describeEdge(edge, "import src/archive/index.ts or a sub-folder's index.ts"));
    expect(past).toEqual([]);
  });

  test("outside src/store, nothing reaches past the BackupStore seam to a backend's own file", () => {
    const past = imports
      .filter((edge) => edge.from.startsWith("src/") && !edge.from.startsWith("src/store/") && STORE_BACKENDS.includes(edge.to))
      .map((edge) => describeEdge(edge, "use the BackupStore interface, createStore or StoreSelector"));
    expect(past).toEqual([]);
  });

  test("only src/app.ts and src/http/ import elysia", () => {
    const outside = files
      .filter((file) => groupOf(file.path, ELYSIA_ALLOWED) === undefined)
      .flatMap((file) => file.packages.filter((p) => p.name === "elysia" || p.name.startsWith("elysia/")).map((p) => `${file.path} → ${p.name}`));
    expect(outside).toEqual([]);
  });

  test("worker URLs name worker files", () => {
    const workers = edges.filter((edge) => edge.kind === "worker-url");
    expect(workers.length).toBeGreaterThan(0);
    expect(workers.filter((edge) => !/^workers\/[\w-]+\.worker\.ts$/.test(edge.to)).map((edge) => describeEdge(edge))).toEqual([]);
  });
});
