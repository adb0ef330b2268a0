import { createHmac, timingSafeEqual } from "node:crypto";

/** Claims of the tokens this server issues (SPEC.md §2). */
export interface TokenClaims {
  id: string;
  collectionId: string;
  type: "auth" | "file";
  refreshable?: boolean;
  exp: number;
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");
const HEADER = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));

/** Signs an HS256 JWT. */
export function signJwt(claims: TokenClaims, key: string): string {
  const body = `${HEADER}.${base64url(JSON.stringify(claims))}`;
  return `${body}.${createHmac("sha256", key).update(body).digest("base64url")}`;
}

/** Reads a JWT's claims without trusting them: callers must pick the key from them and then `verifyJwt`. */
export function peekJwtClaims(token: string): Partial<TokenClaims> | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
    return claims && typeof claims === "object" ? claims : undefined;
  } catch {
    return undefined;
  }
}

/** Verifies an HS256 signature in constant time and the expiry; returns the claims or undefined. */
export function verifyJwt(token: string, key: string, now = Date.now()): TokenClaims | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== HEADER) return undefined;
  const expected = createHmac("sha256", key).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2]!, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const claims = peekJwtClaims(token) as TokenClaims | undefined;
  if (!claims || typeof claims.exp !== "number" || claims.exp * 1000 <= now) return undefined;
  return claims;
}
