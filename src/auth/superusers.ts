import { randomBytes } from "node:crypto";
import type { DatabaseHandle } from "../db/database-handle.ts";
import { formatPbDate } from "../pb-date.ts";

export const SUPERUSERS_COLLECTION_ID = "pbc_3142635823";
export const SUPERUSERS_COLLECTION_NAME = "_superusers";

/** A superuser row, secrets included: never send this shape to a client (see `toRecord`). */
export interface Superuser {
  id: string;
  email: string;
  password: string;
  tokenKey: string;
  created: string;
  updated: string;
}


/** PocketBase-style 15-character lowercase alphanumeric id. */
export function randomId(length = 15): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = randomBytes(length);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

/** The public record PocketBase returns for a superuser: never the password hash or the tokenKey. */
export function toRecord(user: Superuser) {
  return {
    collectionId: SUPERUSERS_COLLECTION_ID,
    collectionName: SUPERUSERS_COLLECTION_NAME,
    id: user.id,
    email: user.email,
    emailVisibility: false,
    verified: true,
    created: user.created,
    updated: user.updated,
  };
}

/** Superusers stored in `data.db`, so that a restore brings back the backup's superusers (as PocketBase). */
export class SuperuserRepository {
  constructor(private readonly db: DatabaseHandle) {}

  async count(): Promise<number> {
    const result = await this.db.execute("SELECT count(*) FROM _superusers");
    return Number(result.rows[0]![0]);
  }

  async findByEmail(email: string): Promise<Superuser | undefined> {
    const result = await this.db.execute({ sql: "SELECT * FROM _superusers WHERE email = ?", args: [email] });
    return result.rows[0] as unknown as Superuser | undefined;
  }

  async findById(id: string): Promise<Superuser | undefined> {
    const result = await this.db.execute({ sql: "SELECT * FROM _superusers WHERE id = ?", args: [id] });
    return result.rows[0] as unknown as Superuser | undefined;
  }

  /** Creates the superuser or sets its password; a new tokenKey revokes its old tokens. */
  async upsert(email: string, password: string): Promise<"created" | "updated"> {
    const hash = await Bun.password.hash(password);
    const now = formatPbDate(new Date());
    const tokenKey = randomBytes(32).toString("hex");
    const existing = await this.findByEmail(email);
    if (existing) {
      await this.db.execute({
        sql: "UPDATE _superusers SET password = ?, tokenKey = ?, updated = ? WHERE id = ?",
        args: [hash, tokenKey, now, existing.id],
      });
      return "updated";
    }
    await this.db.execute({
      sql: "INSERT INTO _superusers (id, email, password, tokenKey, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
      args: [randomId(), email, hash, tokenKey, now, now],
    });
    return "created";
  }
}
