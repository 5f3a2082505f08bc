// The API over gRPC-web (same origin as the app): one transport whose interceptor adds the
// bearer token and, when the server answers UNAUTHENTICATED, rotates the refresh token once and
// retries; a session that cannot be refreshed (revoked, expired) is dropped, which sends the
// app to the login page.

import {
  Code,
  ConnectError,
  createClient,
  type Interceptor,
  type Client,
} from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService } from "./gen/videoflix/v1/auth_pb.js";
import { VideoService } from "./gen/videoflix/v1/video_pb.js";
import { AdminService } from "./gen/videoflix/v1/admin_pb.js";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { rotateTokens, session, setSession } from "./session.js";

const baseUrl = location.origin;

// Calls that must not carry (or refresh) a token.
const anonymous = new Set(["Login", "GuestLogin", "Register", "ActivateAccount", "RefreshToken",
  "RequestPasswordReset", "ConfirmPasswordReset", "ResendActivation"]);

const auth: Interceptor = (next) => async (req) => {
  const name = req.method.name;
  const s = session();
  if (!s || anonymous.has(name)) return next(req);
  req.header.set("authorization", `Bearer ${s.accessToken}`);
  try {
    return await next(req);
  } catch (e) {
    if (req.stream || ConnectError.from(e).code !== Code.Unauthenticated) throw e;
    // Another call may have refreshed meanwhile: refresh tokens are single-use, and presenting
    // a spent one revokes the session, so only a call that saw the current token refreshes.
    const now = session();
    const fresh = now && now.accessToken !== s.accessToken ? now.accessToken : await refresh(s.refreshToken);
    if (!fresh) throw e;
    req.header.set("authorization", `Bearer ${fresh}`);
    return next(req);
  }
};

const transport = createGrpcWebTransport({ baseUrl, interceptors: [auth] });
const plain = createGrpcWebTransport({ baseUrl });

export const authApi: Client<typeof AuthService> = createClient(AuthService, transport);
export const videoApi: Client<typeof VideoService> = createClient(VideoService, transport);
export const adminApi: Client<typeof AdminService> = createClient(AdminService, transport);
const refresher = createClient(AuthService, plain);

let refreshing: Promise<string | null> | null = null;

/** One refresh at a time (the refresh token is single-use); null: the session is over. */
export function refresh(refreshToken: string): Promise<string | null> {
  refreshing ??= refresher
    .refreshToken({ refreshToken })
    .then((r) => {
      rotateTokens(r.tokens!.accessToken, r.tokens!.refreshToken);
      return r.tokens!.accessToken;
    })
    .catch(() => {
      setSession(null);
      return null;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** The current access token, refreshed first when the server no longer accepts it. */
export async function freshAccessToken(): Promise<string | null> {
  const s = session();
  if (!s) return null;
  try {
    await authApi.getMe({});
  } catch {
    /* the interceptor refreshed, or dropped the session */
  }
  return session()?.accessToken ?? null;
}

/** A readable message for a failed call: field violations and error reasons decoded. */
export function describeError(e: unknown): string {
  const err = ConnectError.from(e);
  const fields = err
    .findDetails(BadRequestSchema)
    .flatMap((b) => b.fieldViolations.map((v) => `${v.field}: ${v.description}`));
  if (fields.length) return fields.join("; ");
  const info = err.findDetails(ErrorInfoSchema)[0];
  const message = err.rawMessage || Code[err.code];
  return info ? `${message} (${info.reason.toLowerCase()})` : message;
}

/** The ErrorInfo reason of a failed call, if any. */
export function errorReason(e: unknown): string | undefined {
  return ConnectError.from(e).findDetails(ErrorInfoSchema)[0]?.reason;
}
