-- The broadcast dialect's record files: one per broadcast recording (one source's
-- broadcast), with the publish token and stream it came from and, once its file is
-- finished, its metadata (JSON). Its status is its recording's state.
CREATE TABLE record_files (
    id           BIGSERIAL PRIMARY KEY,
    recording_id TEXT NOT NULL UNIQUE REFERENCES recordings (id),
    token_id     BIGINT NOT NULL,
    stream_name  TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    recorded_on  BIGINT NOT NULL,
    metadata     TEXT
);
CREATE INDEX record_files_by_token ON record_files (token_id, recorded_on);
CREATE INDEX record_files_by_stream ON record_files (stream_name, recorded_on);
CREATE INDEX record_files_by_time ON record_files (recorded_on);
