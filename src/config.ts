import * as v from "valibot";
import { DEFAULT_RESTORE_RESERVE_BYTES } from "./fs/free-space.ts";
import { MIN_KEY_LENGTH } from "./settings/validate-settings.ts";

/**
 * Everything the server reads from flags and the environment, validated in one place.
 * `ENV_NAMES` lists every environment variable read here, so that compose.yaml can be held against it.
 */
export const ENV_NAMES = [
  "PB_APP_NAME",
  "PB_SUPERUSER_EMAIL",
  "PB_SUPERUSER_PASSWORD",
  "PB_BACKUPS_S3_ENDPOINT",
  "PB_BACKUPS_S3_BUCKET",
  "PB_BACKUPS_S3_REGION",
  "PB_BACKUPS_S3_ACCESS_KEY",
  "PB_BACKUPS_S3_SECRET",
  "PB_BACKUPS_S3_FORCE_PATH_STYLE",
  "PB_BACKUPS_ALERT_WEBHOOK",
  "BACKSTREAM_RESTORE_DELAY_MS",
  "BACKSTREAM_RESTORE_RESERVE_MB",
  "BACKSTREAM_S3_PART_MB",
  "BACKSTREAM_S3_RETRY_ATTEMPTS",
  "BACKSTREAM_S3_RETRY_BASE_MS",
  "BACKSTREAM_DEFLATER",
  "BACKSTREAM_TEST_PAUSE_AT",
  "BACKSTREAM_BACKUP_PASSWORD",
  "BACKSTREAM_BACKUP_OLD_PASSWORDS",
  // Read by the restore's job itself (src/native/syncfs.ts): "off" makes it fsync file by file instead of one syncfs.
  "BACKSTREAM_SYNCFS",
  // Read by the local store in the backup's job (src/store/local-backup-store.ts), validated here.
  "BACKSTREAM_FLUSH_AFTER_MB",
] as const;

const HostPortSchema = v.pipe(
  v.string(),
  v.regex(/^[^\s:]*:\d{1,5}$/, "--http must look like HOST:PORT, for example 127.0.0.1:8090"),
);

const IntegerStringSchema = v.pipe(v.string(), v.regex(/^\d+$/, "must be a whole number"), v.transform(Number));

export const ConfigSchema = v.object({
  http: v.optional(HostPortSchema, "127.0.0.1:8090"),
  dir: v.optional(v.pipe(v.string(), v.minLength(1)), "./pb_data"),
  appName: v.optional(v.pipe(v.string(), v.minLength(1)), "Acme"),
  superuserEmail: v.optional(v.string()),
  superuserPassword: v.optional(v.string()),
  /** How long a restore waits after its 204 before it starts (PocketBase: about a second). */
  restoreDelayMs: v.optional(IntegerStringSchema, "1000"),
  /** Free disk space in MiB a restore leaves to the app beside the restored data; it refuses to start otherwise. */
  restoreReserveMb: v.optional(IntegerStringSchema, String(DEFAULT_RESTORE_RESERVE_BYTES / 1024 / 1024)),
  /** S3 tuning: multipart part size in MiB (≥ 5), and how listings, stats and reads retry. */
  s3PartMb: v.optional(v.pipe(IntegerStringSchema, v.minValue(5, "BACKSTREAM_S3_PART_MB must be at least 5"))),
  s3RetryAttempts: v.optional(v.pipe(IntegerStringSchema, v.minValue(1, "BACKSTREAM_S3_RETRY_ATTEMPTS must be at least 1")), "6"),
  s3RetryBaseMs: v.optional(IntegerStringSchema, "100"),
  /** MiB of archive written between background flushes to the local store (0: none until the end). */
  flushAfterMb: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "BACKSTREAM_FLUSH_AFTER_MB must be a whole number of MiB (0 for no flushing until the end)"))),
  /** What deflates backups: ISA-L where its library loads ("isa-l", the default), or always libdeflate. */
  deflater: v.optional(v.picklist(["isa-l", "libdeflate"], "BACKSTREAM_DEFLATER must be isa-l or libdeflate"), "isa-l"),
  /** Test hook: a restore step name at which the restore stops and waits to be killed. Never set in production. */
  testPauseAt: v.optional(v.string()),
  s3Seed: v.object({
    endpoint: v.optional(v.string()),
    bucket: v.optional(v.string()),
    region: v.optional(v.string()),
    accessKey: v.optional(v.string()),
    secret: v.optional(v.string()),
    forcePathStyle: v.optional(v.picklist(["true", "false", "1", "0", ""])),
  }),
  alertWebhook: v.optional(v.pipe(v.string(), v.url("PB_BACKUPS_ALERT_WEBHOOK must be a URL"))),
  /**
   * The key new backups are encrypted with (`--password`, or BACKSTREAM_BACKUP_PASSWORD): over the one in the
   * settings. Never logged nor shown.
   */
  backupPassword: v.optional(v.pipe(v.string(), v.check((key) => [...key].length >= MIN_KEY_LENGTH, `the backup password must be at least ${MIN_KEY_LENGTH} characters long`))),
  /** Earlier keys, one per line (BACKSTREAM_BACKUP_OLD_PASSWORDS), tried when the current one does not open a backup. */
  oldBackupPasswords: v.array(v.string()),
});

export type Config = v.InferOutput<typeof ConfigSchema>;

/** Parses `--name=value` and `--name value` flags; positional arguments are returned apart. */
export function parseFlags(argv: string[]): { flags: Record<string, string>; positional: string[] } {
  const flags: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    if (eq > 0) flags[arg.slice(2, eq)] = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) flags[arg.slice(2)] = argv[++i]!;
    else flags[arg.slice(2)] = "true";
  }
  return { flags, positional };
}

const nonEmpty = (value: string | undefined) => (value === undefined || value === "" ? undefined : value);

/** Builds the config from flags and environment; throws an Error whose message names the bad setting. */
export function loadConfig(flags: Record<string, string>, env: Record<string, string | undefined>): Config {
  const input = {
    http: flags.http,
    dir: flags.dir,
    appName: nonEmpty(env.PB_APP_NAME),
    superuserEmail: nonEmpty(env.PB_SUPERUSER_EMAIL),
    superuserPassword: nonEmpty(env.PB_SUPERUSER_PASSWORD),
    restoreDelayMs: nonEmpty(env.BACKSTREAM_RESTORE_DELAY_MS),
    restoreReserveMb: nonEmpty(env.BACKSTREAM_RESTORE_RESERVE_MB),
    testPauseAt: nonEmpty(env.BACKSTREAM_TEST_PAUSE_AT),
    s3PartMb: nonEmpty(env.BACKSTREAM_S3_PART_MB),
    s3RetryAttempts: nonEmpty(env.BACKSTREAM_S3_RETRY_ATTEMPTS),
    s3RetryBaseMs: nonEmpty(env.BACKSTREAM_S3_RETRY_BASE_MS),
    deflater: nonEmpty(env.BACKSTREAM_DEFLATER),
    flushAfterMb: nonEmpty(env.BACKSTREAM_FLUSH_AFTER_MB),
    s3Seed: {
      endpoint: nonEmpty(env.PB_BACKUPS_S3_ENDPOINT),
      bucket: nonEmpty(env.PB_BACKUPS_S3_BUCKET),
      region: nonEmpty(env.PB_BACKUPS_S3_REGION),
      accessKey: nonEmpty(env.PB_BACKUPS_S3_ACCESS_KEY),
      secret: nonEmpty(env.PB_BACKUPS_S3_SECRET),
      forcePathStyle: nonEmpty(env.PB_BACKUPS_S3_FORCE_PATH_STYLE),
    },
    alertWebhook: nonEmpty(env.PB_BACKUPS_ALERT_WEBHOOK),
    backupPassword: nonEmpty(flags.password) ?? nonEmpty(env.BACKSTREAM_BACKUP_PASSWORD),
    oldBackupPasswords: (env.BACKSTREAM_BACKUP_OLD_PASSWORDS ?? "").split(/\r?\n/).filter((line) => line !== ""),
  };
  const result = v.safeParse(ConfigSchema, input);
  if (!result.success) {
    const issue = result.issues[0];
    const path = v.getDotPath(issue) ?? "config";
    throw new Error(`Invalid configuration (${path}): ${issue.message}`);
  }
  return result.output;
}

/** Splits `HOST:PORT`. */
export function parseHostPort(http: string): { hostname: string; port: number } {
  const i = http.lastIndexOf(":");
  return { hostname: http.slice(0, i) || "127.0.0.1", port: Number(http.slice(i + 1)) };
}
