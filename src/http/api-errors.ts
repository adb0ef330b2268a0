import { ApiError, BackupBusyError, DEFAULT_MESSAGES, InvalidBackupError, NotFoundError, StorageError, redactPaths } from "../errors.ts";
import type { Logger } from "../logger.ts";

/** Maps any error to the PocketBase error shape; unknown errors are logged with their cause and answered generically. */
export function toApiError(error: unknown, log?: Logger): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof BackupBusyError) return new ApiError(400, error.message);
  if (error instanceof NotFoundError) return new ApiError(404, DEFAULT_MESSAGES[404]!);
  if (error instanceof InvalidBackupError) return new ApiError(400, redactPaths(error.message));
  if (error instanceof StorageError) return new ApiError(400, redactPaths(error.message));
  log?.error("unhandled error", error);
  return new ApiError(500, DEFAULT_MESSAGES[500]!);
}

/** The JSON response for an error, with exactly `data`, `message` and `status`. */
export function errorResponse(error: ApiError): Response {
  return Response.json(error.toJSON(), { status: error.status });
}
