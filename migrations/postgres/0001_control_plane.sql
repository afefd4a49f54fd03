-- The control plane: credentials, call types, calls, users, sessions, recordings, files,
-- uploads in progress, external storages and the webhook outbox.
-- Timestamps are unix nanoseconds; JSON documents are TEXT.

CREATE TABLE app_credentials (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    api_key    TEXT NOT NULL,
    api_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE call_types (
    name                  TEXT PRIMARY KEY,
    settings              TEXT NOT NULL,
    grants                TEXT NOT NULL,
    notification_settings TEXT NOT NULL,
    external_storage      TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE calls (
    call_type         TEXT NOT NULL REFERENCES call_types (name),
    call_id           TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    custom            TEXT NOT NULL,
    settings_override TEXT NOT NULL,
    members           TEXT NOT NULL,
    starts_at         BIGINT,
    team              TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (call_type, call_id)
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    name       TEXT,
    image      TEXT,
    custom     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE call_sessions (
    id         TEXT PRIMARY KEY,
    call_type  TEXT NOT NULL,
    call_id    TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at   BIGINT
);
CREATE UNIQUE INDEX call_sessions_one_active ON call_sessions (call_type, call_id) WHERE ended_at IS NULL;

CREATE TABLE recordings (
    id             TEXT PRIMARY KEY,
    call_type      TEXT NOT NULL,
    call_id        TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    recording_type TEXT NOT NULL,
    state          TEXT NOT NULL,
    storage        TEXT,
    requested_by   TEXT,
    error          TEXT,
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    stopped_at     BIGINT,
    updated_at     BIGINT NOT NULL
);
-- One active recording of each type per call session (an earlier session's may still be finishing).
CREATE UNIQUE INDEX recordings_one_active ON recordings (call_type, call_id, session_id, recording_type)
    WHERE state IN ('requested', 'running', 'stopping');
CREATE INDEX recordings_by_state ON recordings (state);

CREATE TABLE recording_files (
    id              BIGSERIAL PRIMARY KEY,
    recording_id    TEXT NOT NULL REFERENCES recordings (id),
    call_type       TEXT NOT NULL,
    call_id         TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    recording_type  TEXT NOT NULL,
    filename        TEXT NOT NULL,
    -- local | s3 (reel's own stores) | external:<name>
    storage         TEXT NOT NULL,
    object_key      TEXT NOT NULL,
    local_path      TEXT,
    size            BIGINT NOT NULL,
    start_time      BIGINT NOT NULL,
    end_time        BIGINT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    upload_id       TEXT,
    created_at      BIGINT NOT NULL,
    uploaded_at     BIGINT,
    UNIQUE (call_type, call_id, session_id, filename)
);
CREATE INDEX recording_files_pending ON recording_files (next_attempt_at) WHERE state = 'pending';
CREATE INDEX recording_files_by_recording ON recording_files (recording_id);
CREATE INDEX recording_files_by_storage ON recording_files (storage);

CREATE TABLE upload_parts (
    file_id     BIGINT NOT NULL REFERENCES recording_files (id) ON DELETE CASCADE,
    part_number BIGINT NOT NULL,
    etag        TEXT NOT NULL,
    PRIMARY KEY (file_id, part_number)
);

CREATE TABLE external_storages (
    name              TEXT PRIMARY KEY,
    bucket            TEXT NOT NULL,
    path              TEXT NOT NULL,
    region            TEXT NOT NULL,
    access_key_id     TEXT,
    secret_access_key TEXT,
    endpoint_url      TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    endpoint        TEXT NOT NULL,
    ordering_key    TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint, ordering_key, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_state ON webhook_deliveries (state, id);
