import { Elysia } from "elysia";
import type { AppContext } from "../app-context.ts";
import { currentSuperuser } from "./auth-guard.ts";

/** `GET /api/health`; superusers also learn whether a backup could start now. */
export const healthRoutes = (ctx: AppContext) =>
  new Elysia().get("/api/health", async ({ request }) => {
    const user = await currentSuperuser(ctx.auth, request);
    return { code: 200, message: "API is healthy.", data: user ? { canBackup: !ctx.backups.busy } : {} };
  });
