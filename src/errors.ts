/**
 * Errors, in two layers: domain errors thrown by services and jobs, and `ApiError`, the PocketBase
 * error shape `{data, message, status}` that only the HTTP edge renders (see SPEC.md §1).
 */

/** A field error in PocketBase's `data.<field>` shape. */
export interface FieldError {
  code: string;
  message: string;
  params?: Record<string, unknown>;
}

/** The PocketBase error response: exactly `data`, `message` and `status`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Field errors by field name (nested objects for nested fields, as PocketBase's settings errors). */
    readonly data: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  toJSON() {
    return { data: this.data, message: this.message, status: this.status };
  }
}

export const DEFAULT_MESSAGES: Record<number, string> = {
  400: "Something went wrong while processing your request.",
  401: "Missing or invalid authentication.",
  403: "You are not allowed to perform this request.",
  404: "The requested resource wasn't found.",
  413: "Request entity too large.",
  429: "Too Many Requests.",
  500: "Something went wrong while processing your request.",
};

export const badRequest = (message = DEFAULT_MESSAGES[400]!, data: Record<string, unknown> = {}) =>
  new ApiError(400, message, data);
export const notFound = (message = DEFAULT_MESSAGES[404]!) => new ApiError(404, message);
export const forbidden = (message = DEFAULT_MESSAGES[403]!) => new ApiError(403, message);
export const unauthorized = (message = DEFAULT_MESSAGES[401]!) => new ApiError(401, message);
export const validationFailed = (data: Record<string, unknown>) =>
  new ApiError(400, "An error occurred while validating the submitted data.", data);
export const unparsableBody = () => new ApiError(400, "An error occurred while loading the submitted data.");
export const bodyTooLarge = () => new ApiError(413, DEFAULT_MESSAGES[413]!);

/** A missing key in a backup store or a missing record; every backend throws this one, never its own. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** Another backup, restore or verify holds the one-job lock. */
export class BackupBusyError extends Error {
  override name = "BackupBusyError";
  constructor() {
    super("Try again later - another backup/restore process has already been started.");
  }
}

/** An archive that is not a restorable backup: the message says what is wrong, in words a user can act on. */
export class InvalidBackupError extends Error {
  override name = "InvalidBackupError";
}

/**
 * An entry read from an archive could not be written where it was going (a restore's staging folder: the disk is
 * full, say). The archive is not to blame; the message names the entry and the cause.
 */
export class EntryWriteError extends Error {
  override name = "EntryWriteError";
  constructor(entry: string, cause: unknown) {
    // The runtime's own message names the file's absolute path: the code and its words are enough.
    super(`The entry ${entry} could not be written: ${fileSystemCause(cause) ?? "an unexpected error"}.`);
  }
}

/** File system error codes worth naming in words, so that whoever reads the message knows what to fix. */
const CAUSES: Record<string, string> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is exceeded",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EIO: "an input/output error",
  ENAMETOOLONG: "a file name is too long",
};

/** `the disk is full (ENOSPC)`, `(EXDEV)` for a code without words, undefined without a code; never a path. */
export function fileSystemCause(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (typeof code !== "string" || !/^E[A-Z0-9]+$/.test(code)) return undefined;
  return CAUSES[code] ? `${CAUSES[code]} (${code})` : `(${code})`;
}

/** A storage backend failed (disk, S3); the message names the problem and never carries a secret or a path. */
export class StorageError extends Error {
  override name = "StorageError";
}

/** A job was cancelled on purpose (for example the server is shutting down). */
export class AbortedError extends Error {
  override name = "AbortedError";
  constructor(message = "The operation was aborted.") {
    super(message);
  }
}

/** Errors as they cross a worker boundary: plain data, no stack. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
}

const KNOWN_ERRORS: Record<string, new (message: string) => Error> = {
  NotFoundError,
  InvalidBackupError,
  StorageError,
  AbortedError,
};

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, ...(typeof code === "string" ? { code } : {}) };
  }
  return { name: "Error", message: String(error) };
}

export function deserializeError(error: SerializedError): Error {
  if (error.name === "BackupBusyError") return new BackupBusyError();
  const Known = KNOWN_ERRORS[error.name];
  const result = Known ? new Known(error.message) : new Error(error.message);
  if (error.code) (result as { code?: string }).code = error.code;
  return result;
}

/** Strips absolute paths from a message so that no response or log line leaks the server's layout. */
export function redactPaths(message: string): string {
  return message.replace(/(?<![\w:/.~-])(?:\/[^\s'":,()/]+){2,}\/?/g, (match) => {
    const base = match.split("/").filter(Boolean).pop();
    return base ? `…/${base}` : "…";
  });
}

/**
 * An encrypted backup that cannot be opened: no key is configured, or the configured key is not the one it was
 * written with. A key problem, never a corrupt archive: the backup may be intact. An `InvalidBackupError` still,
 * so that an upload or a restore refuses it with its message.
 */
export class EncryptedBackupError extends InvalidBackupError {
  override name = "EncryptedBackupError";
}
// Known across a worker boundary (`deserializeError`) as itself, not as a plain error.
KNOWN_ERRORS.EncryptedBackupError = EncryptedBackupError;
