import { Elysia } from "elysia";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";

const WEB_DIR = resolve(import.meta.dir, "../../web");

/** No CDN, no inline code: the page loads only its own script and style, and cannot be framed. */
const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-cache",
};

let bundle: Promise<string> | undefined;

/** Bundles web/app.ts (and the `pocketbase` SDK it imports) once, at the first request for it. */
function buildScript(): Promise<string> {
  bundle ??= Bun.build({ entrypoints: [resolve(WEB_DIR, "app.ts")], target: "browser", minify: true }).then(async (result) => {
    if (!result.success || !result.outputs[0]) throw new Error(`The admin page failed to build: ${result.logs.join("; ")}`);
    return result.outputs[0].text();
  });
  return bundle;
}

const asset = (body: string, type: string) => new Response(body, { headers: { ...SECURITY_HEADERS, "Content-Type": type } });

/** The admin page at `/_/`: it needs no auth to load, and shows only the login form until a superuser logs in. */
export const adminRoutes = () =>
  new Elysia()
    .get("/_/", async () => asset(await readFile(resolve(WEB_DIR, "index.html"), "utf8"), "text/html; charset=utf-8"))
    .get("/_/app.css", async () => asset(await readFile(resolve(WEB_DIR, "app.css"), "utf8"), "text/css; charset=utf-8"))
    .get("/_/app.js", async () => asset(await buildScript(), "text/javascript; charset=utf-8"));
