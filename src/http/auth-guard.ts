import type { AuthService } from "../auth/auth-service.ts";
import type { Superuser } from "../auth/superusers.ts";
import { unauthorized } from "../errors.ts";

/** The token of an `Authorization` header, with or without a case-insensitive `Bearer ` prefix. */
export function bearerToken(request: Request): string | undefined {
  const header = request.headers.get("authorization")?.trim();
  if (!header) return undefined;
  return header.replace(/^bearer\s+/i, "") || undefined;
}

/** The superuser behind the request's auth token, or undefined (an invalid token counts as none). */
export function currentSuperuser(auth: AuthService, request: Request): Promise<Superuser | undefined> {
  return auth.verify(bearerToken(request), "auth");
}

/** Superuser-only routes: 401 with the spec's message when there is no valid superuser token. */
export async function requireSuperuser(auth: AuthService, request: Request): Promise<Superuser> {
  const user = await currentSuperuser(auth, request);
  if (!user) throw unauthorized("The request requires valid record authorization token.");
  return user;
}
