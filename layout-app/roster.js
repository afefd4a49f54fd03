// Who is in the call and what they show: the one model the layouts draw, filled either from a
// real call (call.js) or from synthetic participants (synthetic.js).

/** Participants by id, the dominant speaker and the pinned ones; fires "change". */
export class Roster extends EventTarget {
  constructor() {
    super();
    /** id -> { id, name, camera: MediaStream|null, screen: MediaStream|null, joinedAt } */
    this.participants = new Map();
    this.dominant = null;
    this.pinned = new Set();
    this.queued = false;
  }

  /** Adds or updates a participant with the fields of `p`. */
  upsert(p) {
    const old = this.participants.get(p.id);
    this.participants.set(p.id, { camera: null, screen: null, joinedAt: Date.now(), name: p.id, ...old, ...p });
    this.changed();
  }

  remove(id) {
    if (this.participants.delete(id)) this.changed();
  }

  /** Pins exactly the participants of `ids`, in that order. */
  setPinned(ids) {
    const same = ids.length === this.pinned.size && [...this.pinned].every((id, i) => id === ids[i]);
    if (same) return;
    this.pinned = new Set(ids);
    this.changed();
  }

  setDominant(id) {
    if (this.dominant === id) return;
    this.dominant = id;
    this.changed();
  }

  /** Tells listeners once per task, however many changes it made. */
  changed() {
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      this.dispatchEvent(new Event("change"));
    });
  }

  /** Participants in join order. */
  list() {
    return [...this.participants.values()].sort((a, b) => a.joinedAt - b.joinedAt || (a.id < b.id ? -1 : 1));
  }

  /** The participant sharing a screen (of several, the one who joined first), if any. */
  sharer() {
    return this.list().find((p) => p.screen) || null;
  }
}
