// A real call's participants and media: its event stream says who is there and who speaks;
// one WHEP session plays every camera and shared screen in slots.

/** Negotiates `pc` with the WHEP endpoint `url`; the session URL. */
async function negotiate(pc, url, token) {
  // The server is ICE-lite: it learns this page's address from its connectivity checks, so
  // the offer goes without waiting for candidates.
  await pc.setLocalDescription();
  const res = await fetch(url, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/sdp" },
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  const session = new URL(res.headers.get("Location"), url).href;
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  return session;
}

function nameOf(user, fallback) {
  return (user && (user.name || user.id)) || fallback;
}

/** Each inbound video's totals at the last look, by stats id. */
const lastLook = new Map();

/**
 * How long this page takes from a video packet's arrival to its picture, in ms: the jitter
 * buffer and the decoder, averaged over the frames the videos played since the last look
 * (null at the first look, or if none played). The recorder places the call's audio this much later, so that sound
 * and picture meet.
 */
export async function playoutDelay(pc) {
  let sum = 0;
  let frames = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type !== "inbound-rtp" || s.kind !== "video" || !s.framesDecoded) return;
    const now = {
      buffered: s.jitterBufferDelay || 0,
      emitted: s.jitterBufferEmittedCount || 0,
      decoding: s.totalDecodeTime || 0,
      decoded: s.framesDecoded,
    };
    const before = lastLook.get(s.id);
    lastLook.set(s.id, now);
    // The first look only sets the mark: totals since the start include the wait for the
    // first key frame, which says nothing of the delay now.
    if (!before) return;
    const emitted = now.emitted - before.emitted;
    const decoded = now.decoded - before.decoded;
    if (decoded <= 0) return;
    const buffered = emitted > 0 ? (now.buffered - before.buffered) / emitted : 0;
    sum += (buffered + (now.decoding - before.decoding) / decoded) * 1000 * decoded;
    frames += decoded;
  });
  return frames ? sum / frames : null;
}

/**
 * Keeps `roster` in step with the call of `config` ({ call_type, call_id, token, base_url,
 * slots }): participants from the call's events, their videos over WHEP.
 */
export async function joinCall(roster, config) {
  const base = config.base_url || location.origin;
  const call = `${encodeURIComponent(config.call_type)}/${encodeURIComponent(config.call_id)}`;
  const token = encodeURIComponent(config.token || "");
  const joined = (p, user) =>
    roster.upsert({ id: p.user_session_id, name: nameOf(user, p.user_id), joinedAt: Date.parse(p.joined_at) || Date.now() });

  // Who publishes a camera or a screen, before its picture plays: the page is not ready to
  // be recorded until it does (or the ready timeout passes).
  const videoKind = (type) =>
    ({ TRACK_TYPE_VIDEO: "cameraPublished", TRACK_TYPE_SCREEN_SHARE: "screenPublished" })[type];
  const published = (participant, track, on) => {
    const kind = videoKind(track.type || track.track_type);
    if (kind && roster.participants.has(participant.user_session_id))
      roster.upsert({ id: participant.user_session_id, [kind]: on });
  };

  const events = new EventSource(`${base}/events/${call}?token=${token}`);
  events.onmessage = (m) => {
    const e = JSON.parse(m.data);
    if (e.type === "call.state") {
      for (const p of e.state.participants) joined(p, null);
      for (const t of e.state.tracks || []) published(t.participant, t, true);
      if (e.state.dominant_speaker) roster.setDominant(e.state.dominant_speaker);
      roster.setPinned((e.state.pins || []).map((p) => p.session_id));
    } else if (e.type === "call.pins_updated") {
      roster.setPinned(e.pins.map((p) => p.session_id));
    } else if (e.type === "call.track_published") {
      published(e.participant, e.track, true);
    } else if (e.type === "call.track_unpublished") {
      published(e.participant, e.track, false);
    } else if (e.type === "call.session_participant_joined") {
      joined(e.participant, e.participant.user);
    } else if (e.type === "call.session_participant_left") {
      roster.remove(e.participant.user_session_id);
    } else if (e.type === "call.dominant_speaker_changed") {
      roster.setDominant(e.user_session_id);
    }
  };

  // Video only: the recorder mixes the call's audio itself.
  const pc = new RTCPeerConnection();
  for (let i = 0; i < (config.slots || 30); i++) pc.addTransceiver("video", { direction: "recvonly" });
  const byMid = new Map();
  pc.ontrack = (e) => byMid.set(e.transceiver.mid, e.track);
  const session = await negotiate(pc, `${base}/whep/${call}`, config.token || "");
  const streams = new Map(); // track id -> MediaStream
  const slots = new EventSource(`${session}/events?token=${token}`);
  slots.onmessage = (m) => {
    const playing = new Map(); // participant id -> { camera, screen }
    for (const s of JSON.parse(m.data).slots) {
      const track = byMid.get(s.mid);
      if (!s.track || !track) continue;
      const p = s.track.participant;
      if (!roster.participants.has(p.user_session_id)) joined(p, null);
      if (!streams.has(s.track.track_id)) streams.set(s.track.track_id, new MediaStream([track]));
      const kind = s.track.type === "TRACK_TYPE_SCREEN_SHARE" ? "screen" : "camera";
      playing.set(p.user_session_id, { ...playing.get(p.user_session_id), [kind]: streams.get(s.track.track_id) });
    }
    for (const p of roster.participants.values()) {
      const now = playing.get(p.id) || {};
      if ((now.camera || null) !== p.camera || (now.screen || null) !== p.screen)
        roster.upsert({ id: p.id, camera: now.camera || null, screen: now.screen || null });
    }
  };
  return { pc, session, events, slots };
}
