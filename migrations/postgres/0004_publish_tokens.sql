-- Publish tokens of the broadcast dialect. Flags are 0 or 1; streams is a JSON array of
-- {stream_name, is_regex}; times are unix nanoseconds.
CREATE TABLE publish_tokens (
    id                      BIGSERIAL PRIMARY KEY,
    label                   TEXT NOT NULL,
    token                   TEXT NOT NULL UNIQUE,
    streams                 TEXT NOT NULL,
    record                  BIGINT NOT NULL,
    multisource             BIGINT NOT NULL,
    enable_thumbnails       BIGINT NOT NULL,
    subscribe_requires_auth BIGINT NOT NULL,
    is_active               BIGINT NOT NULL,
    added_on                BIGINT NOT NULL,
    expires_on              BIGINT
);
