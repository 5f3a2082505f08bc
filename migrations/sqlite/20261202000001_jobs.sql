-- Periodic jobs: their schedules (six-field cron, seconds first; changed without a restart),
-- every run (at most one per job and due time: the unique key is what makes a run happen once
-- however many processes are up), and the export files the scheduler wrote (retention deletes
-- only these). Timestamps: integer microseconds.
CREATE TABLE jobs (
    name       TEXT    PRIMARY KEY,
    schedule   TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    -- When the schedule was last set: a missed due time before it is not caught up.
    updated_at INTEGER NOT NULL
);

CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job         TEXT    NOT NULL,
    due_at      INTEGER NOT NULL,
    -- schedule | catch-up | manual
    trigger     TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    -- running | ok | failed
    outcome     TEXT    NOT NULL DEFAULT 'running',
    message     TEXT    NOT NULL DEFAULT '',
    process     TEXT    NOT NULL DEFAULT '',
    UNIQUE (job, due_at)
);
CREATE INDEX job_runs_recent_idx ON job_runs (job, started_at DESC);

CREATE TABLE exports (
    file_name  TEXT    PRIMARY KEY,
    scheduled  BOOLEAN NOT NULL,
    full_data  BOOLEAN NOT NULL,
    videos     INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
