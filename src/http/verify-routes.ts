import { Elysia } from "elysia";
import type { AppContext } from "../app-context.ts";
import { requireSuperuser } from "./auth-guard.ts";

/** `POST /api/backups/{key}/verify`: checks a stored archive under the job lock; 200 with every problem found. */
export const verifyRoutes = (ctx: AppContext) =>
  new Elysia().post(
    "/api/backups/:key/verify",
    async ({ params, request }) => {
      await requireSuperuser(ctx.auth, request);
      return ctx.backups.verify(params.key);
    },
    { parse: "none" },
  );
