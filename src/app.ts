import { Elysia } from "elysia";
import type { AppContext } from "./app-context.ts";
import { ApiError, DEFAULT_MESSAGES } from "./errors.ts";
import { adminRoutes } from "./http/admin-routes.ts";
import { authRoutes } from "./http/auth-routes.ts";
import { backupRoutes, uploadRoute } from "./http/backup-routes.ts";
import { errorResponse, toApiError } from "./http/api-errors.ts";
import { healthRoutes } from "./http/health-routes.ts";
import { jobRoutes } from "./http/job-routes.ts";
import { settingsRoutes } from "./http/settings-routes.ts";
import { verifyRoutes } from "./http/verify-routes.ts";

/** The Elysia app: routes and error rendering only, no listening and no environment reads. */
export function createApp(ctx: AppContext) {
  return new Elysia()
    .onError(({ code, error }) => {
      if (code === "NOT_FOUND") return errorResponse(new ApiError(404, DEFAULT_MESSAGES[404]!));
      if (code === "PARSE") return errorResponse(new ApiError(400, "An error occurred while loading the submitted data."));
      return errorResponse(toApiError(error, ctx.log));
    })
    .use(adminRoutes())
    .use(healthRoutes(ctx))
    .use(authRoutes(ctx))
    // The upload route goes first so that `upload` is never taken for a backup key.
    .use(uploadRoute(ctx))
    .use(backupRoutes(ctx))
    .use(jobRoutes(ctx))
    .use(verifyRoutes(ctx))
    .use(settingsRoutes(ctx));
}
