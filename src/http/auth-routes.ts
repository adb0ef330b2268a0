import { Elysia } from "elysia";
import type { AppContext } from "../app-context.ts";
import { SUPERUSERS_COLLECTION_ID, SUPERUSERS_COLLECTION_NAME, toRecord } from "../auth/superusers.ts";
import { badRequest, notFound, validationFailed, type FieldError } from "../errors.ts";
import { requireSuperuser } from "./auth-guard.ts";
import { readFields } from "./request-body.ts";

const BLANK: FieldError = { code: "validation_required", message: "Cannot be blank." };

/** Superuser login and file tokens (SPEC.md §2). */
export const authRoutes = (ctx: AppContext) =>
  new Elysia()
    .post(
      "/api/collections/:collection/auth-with-password",
      async ({ params, request }) => {
        if (params.collection !== SUPERUSERS_COLLECTION_NAME && params.collection !== SUPERUSERS_COLLECTION_ID) throw notFound();
        const fields = await readFields(request);
        const identity = typeof fields.identity === "string" ? fields.identity : "";
        const password = typeof fields.password === "string" ? fields.password : "";
        const problems: Record<string, FieldError> = {};
        if (!identity) problems.identity = BLANK;
        if (!password) problems.password = BLANK;
        if (Object.keys(problems).length) throw validationFailed(problems);
        const user = await ctx.auth.authenticate(identity, password);
        if (!user) throw badRequest("Failed to authenticate.");
        return { record: toRecord(user), token: ctx.auth.issueAuthToken(user) };
      },
      { parse: "none" },
    )
    .post(
      "/api/files/token",
      async ({ request }) => {
        const user = await requireSuperuser(ctx.auth, request);
        return { token: ctx.auth.issueFileToken(user) };
      },
      { parse: "none" },
    );
