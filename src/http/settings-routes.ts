import { Elysia } from "elysia";
import * as v from "valibot";
import type { AppContext } from "../app-context.ts";
import { badRequest, unparsableBody, validationFailed } from "../errors.ts";
import { BackupsPatchSchema, publicBackupsSettings } from "../settings/settings-store.ts";
import { backupsSettingsProblems } from "../settings/validate-settings.ts";
import { previewRetention } from "../backups/scheduler.ts";
import { requireSuperuser } from "./auth-guard.ts";
import { readFields } from "./request-body.ts";

const count = v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/), v.transform(Number)));
const RetentionQuerySchema = v.strictObject({ cronMaxKeep: count, keepLast: count, keepDaily: count, keepWeekly: count, keepMonthly: count });

/** `GET/PATCH /api/settings` (the backups section, SPEC.md §4) and `POST /api/settings/test/s3`. */
export const settingsRoutes = (ctx: AppContext) => {
  const view = async () => ({
    meta: { appName: ctx.appName },
    // Beyond PocketBase: whether backups are encrypted (a key is set here or in the environment), never the key.
    backups: { ...publicBackupsSettings(await ctx.settings.backups()), ...((await ctx.backups.encrypts()) ? { encryptionKeySet: true } : {}) },
  });
  return new Elysia()
    .get("/api/settings", async ({ request }) => {
      await requireSuperuser(ctx.auth, request);
      return view();
    })
    .patch(
      "/api/settings",
      async ({ request }) => {
        await requireSuperuser(ctx.auth, request);
        const fields = await readFields(request);
        // `null` is no change, as PocketBase decodes it; anything but an object is refused by the schema.
        if (fields.backups != null) {
          const patch = v.safeParse(BackupsPatchSchema, fields.backups);
          if (!patch.success) throw unparsableBody();
          const next = await ctx.settings.preview(patch.output);
          const problems = backupsSettingsProblems(next);
          if (problems) throw validationFailed(problems);
          await ctx.settings.update(patch.output);
          ctx.log.info("backups settings updated", { s3: next.s3.enabled, cron: next.cron || "off" });
        }
        return view();
      },
      { parse: "none" },
    )
    // Beyond PocketBase: a dry run of the retention policy, the saved one or the one the query gives
    // (`?keepDaily=7&keepWeekly=4`, unset fields as saved), so that a policy can be tried before it is saved.
    .get("/api/settings/backups/retention", async ({ request }) => {
      await requireSuperuser(ctx.auth, request);
      const query = Object.fromEntries(new URL(request.url).searchParams);
      const patch = v.safeParse(RetentionQuerySchema, query);
      if (!patch.success) throw unparsableBody();
      const next = await ctx.settings.preview(patch.output);
      const problems = backupsSettingsProblems(next);
      if (problems) throw validationFailed(problems);
      return previewRetention(ctx.backups, next);
    })
    .post(
      "/api/settings/test/s3",
      async ({ request, set }) => {
        await requireSuperuser(ctx.auth, request);
        const fields = await readFields(request);
        if (fields.filesystem !== "backups") {
          const code = fields.filesystem ? "validation_in_invalid" : "validation_required";
          throw validationFailed({ filesystem: { code, message: fields.filesystem ? "Must be a valid value." : "Cannot be blank." } });
        }
        const settings = await ctx.settings.backups();
        if (!settings.s3.enabled) throw badRequest("S3 storage filesystem is not enabled.");
        const { store } = ctx.stores.s3For(settings);
        try {
          await store.probe();
        } catch (error) {
          throw badRequest(`Failed to initialize the S3 storage: ${(error as Error).message.replace(/^Failed to [^:]+: /, "")}`);
        }
        set.status = 204;
        return "";
      },
      { parse: "none" },
    );
};
