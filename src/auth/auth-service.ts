import { peekJwtClaims, signJwt, verifyJwt } from "./jwt.ts";
import { SUPERUSERS_COLLECTION_ID, type Superuser, type SuperuserRepository } from "./superusers.ts";

const AUTH_TOKEN_SECONDS = 86400;
const FILE_TOKEN_SECONDS = 180;

// A valid bcrypt/argon hash to verify against when the email is unknown, so that a wrong email
// costs as long as a wrong password and timing does not reveal which superusers exist.
const DUMMY_HASH = await Bun.password.hash("backstream-timing-equaliser");

/** Logs superusers in and issues and checks their tokens. */
export class AuthService {
  constructor(
    private readonly superusers: SuperuserRepository,
    private secret: () => string,
  ) {}

  /** Returns the superuser for these credentials, or undefined. */
  async authenticate(identity: string, password: string): Promise<Superuser | undefined> {
    const user = await this.superusers.findByEmail(identity);
    const ok = await Bun.password.verify(password, user?.password ?? DUMMY_HASH);
    return ok && user ? user : undefined;
  }

  issueAuthToken(user: Superuser, now = Date.now()): string {
    return signJwt(
      { id: user.id, collectionId: SUPERUSERS_COLLECTION_ID, type: "auth", refreshable: true, exp: Math.floor(now / 1000) + AUTH_TOKEN_SECONDS },
      this.#keyFor(user),
    );
  }

  issueFileToken(user: Superuser, now = Date.now()): string {
    return signJwt(
      { id: user.id, collectionId: SUPERUSERS_COLLECTION_ID, type: "file", exp: Math.floor(now / 1000) + FILE_TOKEN_SECONDS },
      this.#keyFor(user),
    );
  }

  /** The superuser a token of the given type belongs to, or undefined for anything invalid or expired. */
  async verify(token: string | undefined | null, type: "auth" | "file"): Promise<Superuser | undefined> {
    if (!token) return undefined;
    const claims = peekJwtClaims(token);
    if (!claims || typeof claims.id !== "string" || claims.type !== type) return undefined;
    const user = await this.superusers.findById(claims.id);
    if (!user) return undefined;
    const verified = verifyJwt(token, this.#keyFor(user));
    if (!verified || verified.collectionId !== SUPERUSERS_COLLECTION_ID || verified.type !== type) return undefined;
    return user;
  }

  #keyFor(user: Superuser): string {
    return user.tokenKey + this.secret();
  }
}
