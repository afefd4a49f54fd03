"""Verifies and parses webhook bodies with the official Stream SDK.

usage: verify_webhooks.py API_KEY API_SECRET DIR  (DIR holds N.json bodies and N.sig signatures)
"""
import pathlib
import sys
import warnings

from getstream import Stream

warnings.simplefilter("error", RuntimeWarning)  # a missing required field is a failure

key, secret, folder = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
client = Stream(api_key=key, api_secret=secret, base_url="http://127.0.0.1:9")
count = 0
for body_file in sorted(folder.glob("*.json")):
    body = body_file.read_bytes()
    sig = body_file.with_suffix(".sig").read_text()
    assert client.verify_signature(body, sig), f"bad signature on {body_file.name}"
    event = client.verify_and_parse_webhook(body, sig)
    name = type(event).__name__
    if name == "CallSessionStartedEvent":
        assert event.session_id and event.call.cid == event.call_cid, body
        count += 1
        continue
    assert name.startswith("CallRecording"), f"{body_file.name} parsed as {name}"
    assert event.call_cid and event.egress_id and event.recording_type, body
    if name == "CallRecordingReadyEvent":
        assert event.call_recording.url.startswith("http"), body
        assert event.call_recording.start_time <= event.call_recording.end_time
    count += 1
print(f"verified {count} events")
