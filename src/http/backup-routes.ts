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
        const fields = await readFields(request);
        const name = typeof fields.name === "string" ? fields.name : fields.name == null ? "" : String(fields.name);
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

/** `attachment; filename=<key>` as PocketBase sends it; quoted only when the key holds characters a token may not. */
function contentDisposition(key: string): string {
  return /^[A-Za-z0-9!#$%&'*+.^_`|~@-]+$/.test(key) ? `attachment; filename=${key}` : `attachment; filename=${JSON.stringify(key)}`;
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
