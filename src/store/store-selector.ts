import type { BackupStore, StoreDescriptor } from "./backup-store.ts";
import { LocalBackupStore } from "./local-backup-store.ts";
import type { RetryPolicy } from "./retry.ts";
import { S3BackupStore } from "./s3-backup-store.ts";

/** The S3 section of the backups settings, as saved (settings/settings-store.ts): the secret included. */
export interface S3Settings {
  enabled: boolean;
  bucket: string;
  region: string;
  endpoint: string;
  accessKey: string;
  secret: string;
  forcePathStyle: boolean;
}

/** What the selector reads of the backups settings: their S3 section. */
export interface StoreSettings {
  s3: S3Settings;
}

/** Tuning for S3 stores that comes from the server's configuration, not from the settings. */
export interface S3Tuning {
  partSize?: number;
  retry?: RetryPolicy;
}

export interface SelectedStore {
  store: BackupStore;
  descriptor: StoreDescriptor;
}

interface SelectedS3Store extends SelectedStore {
  store: S3BackupStore;
}

/**
 * Which store backups live in now: `<data dir>/backups`, or the S3 bucket when the settings enable it.
 * Follows settings changes; an S3 store is rebuilt only when its connection settings change, so it keeps
 * what it knows about keys just written (see `BackupStore.expect`).
 */
export class StoreSelector {
  readonly #local: SelectedStore;
  #s3: (SelectedS3Store & { fingerprint: string }) | undefined;
  #current: SelectedStore;

  constructor(backupsDir: string, private readonly tuning: S3Tuning = {}) {
    this.#local = { store: new LocalBackupStore(backupsDir), descriptor: { kind: "local", dir: backupsDir } };
    this.#current = this.#local;
  }

  current(): SelectedStore {
    return this.#current;
  }

  /**
   * Removes what interrupted writes left behind: in the local folder always (it may hold leftovers from before
   * S3 was switched on), and in the current store when that is another one. A bucket that cannot be reached
   * only goes to `warn`: starting must not depend on it.
   */
  async cleanup(warn: (error: Error) => void): Promise<void> {
    await this.#local.store.cleanup();
    if (this.#current !== this.#local) await this.#current.store.cleanup().catch(warn);
  }

  /** Switches to the store the settings name. */
  use(settings: StoreSettings): void {
    this.#current = settings.s3.enabled ? this.s3For(settings) : this.#local;
  }

  /** The S3 store for these settings (enabled or not: the connection test uses it before S3 is switched on). */
  s3For(settings: StoreSettings): SelectedS3Store {
    const descriptor: StoreDescriptor = {
      kind: "s3",
      endpoint: settings.s3.endpoint,
      bucket: settings.s3.bucket,
      region: settings.s3.region,
      accessKey: settings.s3.accessKey,
      secret: settings.s3.secret,
      forcePathStyle: settings.s3.forcePathStyle,
      ...(this.tuning.partSize ? { partSize: this.tuning.partSize } : {}),
      ...(this.tuning.retry ? { retry: this.tuning.retry } : {}),
    };
    const fingerprint = JSON.stringify(descriptor);
    if (this.#s3?.fingerprint !== fingerprint) this.#s3 = { store: new S3BackupStore(descriptor), descriptor, fingerprint };
    return this.#s3;
  }
}
