import { Elysia } from "elysia";
import type { AppContext } from "./app-context.ts";
import { ApiError, DEFAULT_MESSAGES } from "./errors.ts";
import { authRoutes } from "./http/auth-routes.ts";
import { backupRoutes } from "./http/backup-routes.ts";
import { errorResponse, toApiError } from "./http/api-errors.ts";
import { healthRoutes } from "./http/health-routes.ts";
import { jobRoutes } from "./http/job-routes.ts";
import { verifyRoutes } from "./http/verify-routes.ts";

/** The Elysia app: routes and error rendering only, no listening and no environment reads. */
export function createApp(ctx: AppContext) {
  return new Elysia()
    .onError(({ code, error }) => {
      if (code === "NOT_FOUND") return errorResponse(new ApiError(404, DEFAULT_MESSAGES[404]!));
      if (code === "PARSE") return errorResponse(new ApiError(400, "An error occurred while loading the submitted data."));
      return errorResponse(toApiError(error, ctx.log));
    })
    .use(healthRoutes(ctx))
    .use(authRoutes(ctx))
    .use(backupRoutes(ctx))
    .use(jobRoutes(ctx))
    .use(verifyRoutes(ctx));
}
