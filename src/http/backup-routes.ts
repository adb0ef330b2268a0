import { Elysia } from "elysia";
import type { AppContext } from "../app-context.ts";
import { forbidden, unparsableBody, validationFailed } from "../errors.ts";
import { requireSuperuser } from "./auth-guard.ts";
import { parseRange } from "./byte-range.ts";
import { MultipartError, multipartBoundary, readMultipart } from "./multipart-stream.ts";
import { readFields } from "./request-body.ts";

/** The Backups API (SPEC.md §3). Handlers check auth, parse, call the service and shape the answer. */
export const backupRoutes = (ctx: AppContext) =>
  new Elysia()
    .get("/api/backups", async ({ request }) => {
      await requireSuperuser(ctx.auth, request);
      return ctx.backups.list();
    })
    .post(
      "/api/backups",
      async ({ request, set }) => {
        await requireSuperuser(ctx.auth, request);
        ctx.backups.assertIdle(); // the busy error comes before any body error
        const name = backupName(await readFields(request));
        await ctx.backups.create(name || undefined);
        set.status = 204;
        return "";
      },
      { parse: "none" },
    )
    .get("/api/backups/:key", async ({ params, query, request }) => {
      const user = await ctx.auth.verify(typeof query.token === "string" ? query.token : undefined, "file");
      if (!user) throw forbidden("Insufficient permissions to access the resource.");
      const key = params.key;
      const info = await ctx.backups.stat(key);
      const headers: Record<string, string> = {
        "Content-Type": "application/zip",
        "Content-Disposition": contentDisposition(key),
        "Accept-Ranges": "bytes",
        ...(info.sha256 ? { "Repr-Digest": `sha-256=:${Buffer.from(info.sha256, "hex").toString("base64")}:` } : {}),
      };
      const range = parseRange(request.headers.get("range"), info.size);
      if (range === "unsatisfiable") {
        return new Response(null, { status: 416, headers: { ...headers, "Content-Range": `bytes */${info.size}` } });
      }
      if (range) {
        headers["Content-Range"] = `bytes ${range.start}-${range.end}/${info.size}`;
        headers["Content-Length"] = String(range.end - range.start + 1);
        return new Response(await ctx.backups.read(key, range), { status: 206, headers });
      }
      headers["Content-Length"] = String(info.size);
      return new Response(await ctx.backups.read(key), { status: 200, headers });
    })
    .delete("/api/backups/:key", async ({ params, request, set }) => {
      await requireSuperuser(ctx.auth, request);
      await ctx.backups.delete(params.key);
      set.status = 204;
      return "";
    })
    .post(
      "/api/backups/:key/restore",
      async ({ params, request, set }) => {
        await requireSuperuser(ctx.auth, request);
        await ctx.backups.restore(params.key);
        set.status = 204;
        return "";
      },
      { parse: "none" },
    );

/**
 * Create's `name`: a string, or absent/`null` for "generate one". Any other JSON type cannot be loaded into
 * PocketBase's string field, and is answered as it answers that (never turned into a string: an object's own
 * `toString` would be called).
 */
function backupName(fields: Record<string, unknown>): string {
  if (typeof fields.name === "string") return fields.name;
  if (fields.name == null) return "";
  throw unparsableBody();
}

/**
 * `attachment; filename=<key>` as PocketBase sends it, for keys that are HTTP tokens (the `@` of scheduled
 * backups included, as before). Any other key (spaces, quotes, non-ASCII) could not go into a header as it is:
 * an ASCII stand-in for old clients, and the key itself as RFC 6266 / RFC 5987 `filename*`, UTF-8 and
 * percent-encoded, which every current client prefers.
 */
function contentDisposition(key: string): string {
  if (/^[A-Za-z0-9!#$%&'*+.^_`|~@-]+$/.test(key)) return `attachment; filename=${key}`;
  const fallback = key.replace(/[^\x20-\x7e]|["\\]/gu, "_");
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeRfc5987(key)}`;
}

/** Percent-encodes all but RFC 5987's attr-chars (`encodeURIComponent` leaves `'()*` as they are, which are not). */
function encodeRfc5987(text: string): string {
  return encodeURIComponent(text).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `POST /api/backups/upload`: the multipart body is streamed part by part, never held whole. */
export const uploadRoute = (ctx: AppContext) =>
  new Elysia().post(
    "/api/backups/upload",
    async ({ request, set }) => {
      await requireSuperuser(ctx.auth, request);
      ctx.backups.assertIdle();
      const boundary = multipartBoundary(request.headers.get("content-type"));
      if (boundary && request.body) {
        try {
          for await (const part of readMultipart(request.body, boundary)) {
            if (part.name !== "file" || part.filename === undefined) continue;
            await ctx.backups.upload(part.filename, part.body);
            set.status = 204;
            return "";
          }
        } catch (error) {
          if (error instanceof MultipartError) throw unparsableBody();
          throw error;
        }
      }
      throw validationFailed({ file: { code: "validation_required", message: "Cannot be blank." } });
    },
    { parse: "none" },
  );
