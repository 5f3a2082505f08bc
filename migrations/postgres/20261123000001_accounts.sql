-- Accounts and sessions.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT        NOT NULL UNIQUE,
    -- PHC string (argon2id); empty = unusable password (guests).
    password_hash TEXT        NOT NULL,
    is_active     BOOLEAN     NOT NULL DEFAULT FALSE,
    is_superuser  BOOLEAN     NOT NULL DEFAULT FALSE,
    is_guest      BOOLEAN     NOT NULL DEFAULT FALSE,
    phone         TEXT        NOT NULL DEFAULT '',
    address       TEXT        NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    last_login    TIMESTAMPTZ
);
CREATE INDEX users_guest_created_idx ON users (created_at) WHERE is_guest;

-- One row per login: the refresh-token family. Revoking it kills its access tokens at once.
CREATE TABLE sessions (
    id          TEXT        PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Refresh tokens, stored as SHA-256 hashes; a used one presented again revokes its session.
CREATE TABLE refresh_tokens (
    token_hash  TEXT        PRIMARY KEY,
    session_id  TEXT        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
