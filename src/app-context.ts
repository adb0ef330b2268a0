import type { AuthService } from "./auth/auth-service.ts";
import type { BackupService } from "./backups/backup-service.ts";
import type { DatabaseHandle } from "./db/database-handle.ts";
import type { JobTracker } from "./jobs/job-tracker.ts";
import type { Logger } from "./logger.ts";
import type { SettingsStore } from "./settings/settings-store.ts";
import type { StoreSelector } from "./store/store-selector.ts";

/** The services the HTTP layer talks to; built by `startServer`, or by a test with its own parts. */
export interface AppContext {
  dataDir: string;
  appName: string;
  db: DatabaseHandle;
  settings: SettingsStore;
  stores: StoreSelector;
  auth: AuthService;
  backups: BackupService;
  jobs: JobTracker;
  log: Logger;
}
