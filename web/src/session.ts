// The signed-in session: tokens and user, kept in localStorage with "remember me" (the
// session outlives the browser) and in sessionStorage without (it survives reloads only).

import type { User } from "./gen/videoflix/v1/common_pb.js";

/** What the app keeps of a session; ids are strings here since bigint has no JSON form. */
export interface Session {
  accessToken: string;
  refreshToken: string;
  userId: string;
  email: string;
  isGuest: boolean;
  isSuperuser: boolean;
  remember: boolean;
}

const KEY = "videoflix.session";
let current: Session | null = load();
const listeners = new Set<(s: Session | null) => void>();

function load(): Session | null {
  const raw = localStorage.getItem(KEY) ?? sessionStorage.getItem(KEY);
  try {
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function session(): Session | null {
  return current;
}

export function onSessionChange(f: (s: Session | null) => void): void {
  listeners.add(f);
}

export function setSession(s: Session | null): void {
  current = s;
  localStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY);
  if (s) (s.remember ? localStorage : sessionStorage).setItem(KEY, JSON.stringify(s));
  for (const f of listeners) f(s);
}

/** A session from a login answer's tokens and user. */
export function sessionFrom(
  tokens: { accessToken: string; refreshToken: string },
  user: User,
  remember: boolean,
): Session {
  return {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    userId: user.id.toString(),
    email: user.email,
    isGuest: user.isGuest,
    isSuperuser: user.isSuperuser,
    remember,
  };
}

/** Replaces the tokens of the current session (after a refresh). */
export function rotateTokens(accessToken: string, refreshToken: string): void {
  if (current) setSession({ ...current, accessToken, refreshToken });
}
