-- A recording may run beside others of its type in one call session (RealtimeKit's
-- allow_multiple_recordings): those take a slot of their own (their id); the rest share ''.
-- A paused recording is still active.
ALTER TABLE recordings ADD COLUMN slot TEXT NOT NULL DEFAULT '';
DROP INDEX recordings_one_active;
CREATE UNIQUE INDEX recordings_one_active ON recordings (call_type, call_id, session_id, recording_type, slot)
    WHERE state IN ('requested', 'running', 'paused', 'stopping');
