"""Reads `raw-recording list-tracks --format json` the way scripts written for the reference
tool read its listing, and fails on anything such a script could not take.

usage: summarize_tracks.py < listing.json
  Prints one JSON object: {"users": [...], "sessions": [...], "tracks": [one line per track:
  "user/session/track kind codec segments start-end seconds"]}.
"""
import json
import sys
from datetime import datetime

listing = json.load(sys.stdin)
assert isinstance(listing, dict), "the listing is an object"
users, sessions = listing["userIds"], listing["sessions"]
lines = []
for t in listing["tracks"]:
    for field in ("callType", "callId", "callSessionId", "userId", "sessionId", "trackId"):
        assert isinstance(t[field], str) and t[field], field
    assert t["trackType"].startswith("TRACK_TYPE_"), t["trackType"]
    assert t["trackKind"] in ("audio", "video"), t["trackKind"]
    assert isinstance(t["isScreenshare"], bool)
    assert t["isScreenshare"] == ("SCREEN_SHARE" in t["trackType"])
    assert t["codec"].split("/")[0] == t["trackKind"], t["codec"]
    assert t["segmentCount"] == len(t["segments"]) >= 1
    assert t["userId"] in users and t["sessionId"] in sessions
    datetime.fromisoformat(t["callStartTime"])
    start = datetime.fromisoformat(t["trackStartTime"])
    end = datetime.fromisoformat(t["trackEndTime"])
    assert start <= end
    lines.append(
        f"{t['userId']}/{t['sessionId']}/{t['trackId']} {t['trackKind']} {t['codec']} "
        f"{t['segmentCount']} {(end - start).total_seconds():.3f}"
    )
print(json.dumps({"users": sorted(users), "sessions": sorted(sessions), "tracks": lines}))
