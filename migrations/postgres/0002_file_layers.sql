-- Track recordings group their files by layer.
ALTER TABLE recording_files ADD COLUMN layer TEXT;
