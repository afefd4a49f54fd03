"""Drives a running reel with the official Stream Python SDK.

usage: sdk_flow.py BASE_URL API_KEY API_SECRET
The server has a call default:recorded (created by alice) with one ready raw recording,
and no other calls. Prints "ok" when every check holds.
"""
import sys
import warnings

import httpx
from getstream import Stream
from getstream.exceptions import StreamApiException
from getstream.models import (
    CallRequest,
    CallSettingsRequest,
    IndividualRecordingSettingsRequest,
    RawRecordingSettingsRequest,
    RecordSettingsRequest,
    UserRequest,
)
from datetime import datetime, timedelta, timezone

# A response missing a field the SDK requires makes dataclasses-json warn: treat it as a failure.
warnings.simplefilter("error", RuntimeWarning)

base_url, key, secret = sys.argv[1:4]
client = Stream(api_key=key, api_secret=secret, base_url=base_url)


def expect_error(fn, status, code, text):
    try:
        fn()
    except StreamApiException as e:
        assert e.status_code == status, (e.status_code, e.message)
        assert e.code == code, (e.code, e.message)
        assert text in e.message, e.message
        return
    raise AssertionError(f"expected an error containing {text!r}")


# Call type settings.
r = client.video.update_call_type(
    "default",
    settings=CallSettingsRequest(
        recording=RecordSettingsRequest(mode="available", quality="1080p"),
        individual_recording=IndividualRecordingSettingsRequest(mode="available", output_types=["audio_only"]),
    ),
)
assert r.data.settings.recording.quality == "1080p"
assert r.data.settings.individual_recording.output_types == ["audio_only"]
assert "admin" in r.data.grants
assert client.video.get_call_type("default").data.settings.recording.quality == "1080p"
assert "default" in client.video.list_call_types().data.call_types

# Calls: create, read back, override.
call = client.video.call("default", "sdk-call")
r = call.get_or_create(data=CallRequest(created_by_id="alice", custom={"topic": "sdk"}))
assert r.data.created is True
assert r.data.call.cid == "default:sdk-call"
assert r.data.call.created_by.id == "alice"
assert r.data.call.custom == {"topic": "sdk"}
assert r.data.call.settings.recording.quality == "1080p", "the type's setting"
assert r.data.call.created_at.year >= 2024, r.data.call.created_at
assert "start-record-call" in r.data.own_capabilities
assert call.get_or_create(data=CallRequest(created_by_id="bob")).data.created is False

r = call.update(
    settings_override=CallSettingsRequest(
        recording=RecordSettingsRequest(mode="available", quality="portrait-720x1280"),
        individual_recording=IndividualRecordingSettingsRequest(mode="available", output_types=["video_only", "audio_video"]),
    )
)
assert r.data.call.settings.recording.quality == "portrait-720x1280"
assert r.data.call.settings.individual_recording.output_types == ["video_only", "audio_video"]
got = call.get().data.call
assert got.settings.recording.quality == "portrait-720x1280", "the call's override wins"
assert got.current_session_id == ""
starts = datetime(2030, 1, 2, 15, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
assert call.update(starts_at=starts).data.call.starts_at == starts

# Users: a stored role counts in grants.
users = client.upsert_users(UserRequest(id="sue", role="admin", name="Sue")).data.users
assert users["sue"].role == "admin" and users["sue"].name == "Sue"

# Recording errors, as the SDK raises them.
expect_error(lambda: call.start_recording("composite"), 400, 4,
             'StartRecording failed with error: "there is no active session"')
expect_error(lambda: call.start_recording("raw"), 400, 4, "there is no active session")
expect_error(lambda: call.stop_recording("individual"), 400, 4,
             'StopRecording failed with error: "call egress is not running"')
call.update(settings_override=CallSettingsRequest(raw_recording=RawRecordingSettingsRequest(mode="disabled")))
expect_error(lambda: call.start_recording("raw"), 400, 4, "raw recording is disabled for this call")
expect_error(lambda: call.start_recording("video"), 400, 4, "recording_type")
expect_error(lambda: call.delete_recording("nosession", "nofile.mp4"), 404, 16,
             'DeleteRecording failed with error: "recording doesn\'t exist"')
expect_error(lambda: client.video.call("default", "missing").get(), 404, 16, "does not exist")
expect_error(lambda: client.video.call("default", "../x").get(), 400, 4, "invalid")

# Listing, downloading and deleting a real recording.
recorded = client.video.call("default", "recorded")
recs = recorded.list_recordings().data.recordings
assert len(recs) == 1, recs
rec = recs[0]
assert rec.recording_type == "raw"
assert rec.start_time <= rec.end_time
body = httpx.get(rec.url).content
assert len(body) == 4096, len(body)
recorded.delete_recording(rec.session_id, rec.filename)
assert recorded.list_recordings().data.recordings == []
assert httpx.get(rec.url).status_code == 404
expect_error(lambda: recorded.delete_recording(rec.session_id, rec.filename), 404, 16, "recording doesn't exist")

# User tokens: a user without the grant gets StreamApiException 403.
user_client = Stream(api_key=key, api_secret=secret, base_url=base_url).clone_for_token(client.create_token("eve"))
expect_error(lambda: user_client.video.call("default", "recorded").list_recordings(), 403, 17, "ListRecordings")
admin = Stream(api_key=key, api_secret=secret, base_url=base_url).clone_for_token(
    client.create_call_token("root", role="admin"))
assert admin.video.call("default", "recorded").list_recordings().data.recordings == []

# Pins: the server and admins may pin for everyone, a plain user may not.
assert call.video_pin(session_id="s-ann", user_id="ann").data.duration
assert admin.video.call("default", "sdk-call").video_unpin(session_id="s-ann", user_id="ann").data.duration
expect_error(lambda: user_client.video.call("default", "sdk-call").video_pin(session_id="s-ann", user_id="ann"),
             403, 17, "PinForEveryone")

sue = Stream(api_key=key, api_secret=secret, base_url=base_url).clone_for_token(client.create_token("sue"))
assert sue.video.call("default", "recorded").list_recordings().data.recordings == []

# A wrong secret is refused.
wrong = Stream(api_key=key, api_secret="not-the-secret", base_url=base_url)
expect_error(lambda: wrong.video.call("default", "recorded").get(), 401, 5, "not valid")
print("ok")
