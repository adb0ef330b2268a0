// Which store backups live in, chosen from the saved settings and the environment: the wiring's part, so that
// src/store/ knows neither the configuration nor the settings.
import type { Config } from "../config.ts";
import { mergeBackups, readSavedBackupsSettings, type BackupsPatch, type SettingsStore } from "../settings/settings-store.ts";
import { StoreSelector } from "../store/store-selector.ts";

/**
 * The server's stores: the one the settings in `data.db` name, with `PB_BACKUPS_S3_*` from the environment
 * saved over them first, so the settings API shows what is in use (compose.yaml switches S3 on this way).
 */
export async function serverStores(backupsDir: string, config: Config, settings: SettingsStore): Promise<StoreSelector> {
  const fromEnvironment = s3SettingsFromEnvironment(config);
  const stores = storeSelector(backupsDir, config);
  stores.use(fromEnvironment ? await settings.update(fromEnvironment) : await settings.backups());
  return stores;
}

/**
 * The CLI's stores: the same choice the server makes, from the settings saved in `data.db` (read, never
 * written: a cron job must not rewrite the app's settings) and the environment over them. With no `data.db`
 * yet (disaster recovery into an empty directory), the environment alone can point at the bucket.
 */
export async function commandLineStores(backupsDir: string, databasePath: string, config: Config): Promise<StoreSelector> {
  const saved = await readSavedBackupsSettings(databasePath);
  const fromEnvironment = s3SettingsFromEnvironment(config);
  const stores = storeSelector(backupsDir, config);
  stores.use(fromEnvironment ? mergeBackups(saved, fromEnvironment) : saved);
  return stores;
}

/** A selector with the configuration's S3 tuning: part size and retries. */
function storeSelector(backupsDir: string, config: Config): StoreSelector {
  return new StoreSelector(backupsDir, {
    ...(config.s3PartMb ? { partSize: config.s3PartMb * 1024 * 1024 } : {}),
    retry: { attempts: config.s3RetryAttempts, baseDelayMs: config.s3RetryBaseMs },
  });
}

/** `PB_BACKUPS_S3_*` as a settings change that switches S3 on; nothing when the endpoint or bucket is unset. */
function s3SettingsFromEnvironment(config: Config): BackupsPatch | undefined {
  const seed = config.s3Seed;
  if (!seed.endpoint || !seed.bucket) return undefined;
  return {
    s3: {
      enabled: true,
      endpoint: seed.endpoint,
      bucket: seed.bucket,
      ...(seed.region ? { region: seed.region } : {}),
      ...(seed.accessKey ? { accessKey: seed.accessKey } : {}),
      ...(seed.secret ? { secret: seed.secret } : {}),
      ...(seed.forcePathStyle ? { forcePathStyle: seed.forcePathStyle === "true" || seed.forcePathStyle === "1" } : {}),
    },
  };
}
