// The page's elements: one tile per camera or shared screen, placed where arrange() says,
// restyled by options and by an external stylesheet through documented class names.

import { arrange } from "./arrange.js";
import { aspect } from "./options.js";

/** Seconds a grid page stays before the next one. */
const PAGE_SECONDS = 10;

const px = (v) => Number.parseFloat(v) || 0;

function element(tag, className, parent) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (parent) parent.append(e);
  return e;
}

function initials(name) {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join("");
}

/**
 * Draws `roster` on `root` as `layout`, with the resolved option values of each layout it may
 * draw (`layout`, and the screen-share layout) in `valuesByLayout`.
 */
export class Stage {
  constructor(root, roster, layout, valuesByLayout, onReady) {
    this.root = root;
    this.roster = roster;
    this.layout = layout;
    this.valuesByLayout = valuesByLayout;
    this.values = valuesByLayout[layout];
    this.onReady = onReady;
    this.page = 0;
    this.pages = 1;
    /** tile key -> { el, video, label, stream } */
    this.tiles = new Map();
    root.classList.add("reel-layout");
    this.background = element("div", "reel-background", root);
    this.stage = element("div", "reel-stage", root);
    this.probe = element("div", "reel-probe", root);
    this.probe.setAttribute("aria-hidden", "true");
    this.pageIndicator = element("div", "reel-page-indicator", root);
    this.logo = element("img", "reel-logo", root);
    this.logo.alt = "";
    this.title = element("div", "reel-title", root);
    roster.addEventListener("change", () => this.render());
    new ResizeObserver(() => this.render()).observe(root);
    setInterval(() => {
      if (this.pages > 1) {
        this.page += 1;
        this.render();
      }
    }, PAGE_SECONDS * 1000);
  }

  /** The layout drawn now: `screenshare_layout` while someone shares a screen. */
  current() {
    return this.roster.sharer() ? this.values.screenshare_layout : this.layout;
  }

  /** The tiles to draw, most important first. */
  order(layout) {
    const people = this.roster.list();
    const sharer = this.roster.sharer();
    const cam = (p) => ({ key: `${p.id}:camera`, kind: "camera", participant: p });
    const screen = sharer ? [{ key: `${sharer.id}:screen`, kind: "screen", participant: sharer }] : [];
    // Of several pinned participants, the one pinned last.
    const pinned = [...this.roster.pinned]
      .reverse()
      .map((id) => this.roster.participants.get(id))
      .find(Boolean);
    const dominant = people.find((p) => p.id === this.roster.dominant);
    const withVideo = people.find((p) => p.camera);
    if (layout === "grid") return [...screen, ...people.map(cam)];
    if (layout === "single-participant") {
      // Pinned, then sharing a screen, then the dominant speaker, then anyone with video.
      if (pinned) return [cam(pinned)];
      if (screen.length) return screen;
      const one = dominant || withVideo || people[0];
      return one ? [cam(one)] : [];
    }
    const main = pinned || dominant || withVideo || people[0];
    if (screen.length) return [...screen, ...people.map(cam)];
    if (!main) return [];
    const rest = people.filter((p) => p !== main);
    if (layout === "mobile") rest.sort((a, b) => Boolean(b.camera) - Boolean(a.camera));
    return [cam(main), ...rest.map(cam)];
  }

  spacing() {
    const s = getComputedStyle(this.probe);
    return { padding: px(s.paddingTop), margin: px(s.paddingRight), padBlock: px(s.paddingBottom), padInline: px(s.paddingLeft) };
  }

  render() {
    const layout = this.current();
    const v = this.valuesByLayout[layout] || this.values;
    const { width, height } = this.root.getBoundingClientRect();
    for (const name of ["grid", "spotlight", "single-participant", "mobile"])
      this.root.classList.toggle(`reel-layout--${name}`, name === layout);
    this.root.classList.toggle("reel-screenshare", Boolean(this.roster.sharer()));
    const { placed, pages } = arrange({
      layout,
      width,
      height,
      tiles: this.order(layout),
      page: this.page,
      spacing: this.spacing(),
      opts: {
        columns: v["grid.columns"],
        rows: v["grid.rows"],
        pageSize: v["layout.grid.page_size"],
        sizePct: v["grid.size_percentage"],
        position: v["grid.position"],
        aspect: aspect(v["participant.aspect_ratio"]),
      },
    });
    this.pages = pages;
    this.pageIndicator.textContent = pages > 1 ? `${(this.page % pages) + 1} / ${pages}` : "";
    this.pageIndicator.hidden = pages <= 1;
    const shown = new Set();
    for (const [i, p] of placed.entries()) {
      shown.add(p.tile.key);
      this.place(this.tile(p.tile), p, i);
    }
    for (const [key, t] of this.tiles) {
      if (!shown.has(key)) {
        t.el.remove();
        this.tiles.delete(key);
      }
    }
    this.logo.hidden = !v["logo.image_url"];
    if (v["logo.image_url"] && this.logo.getAttribute("src") !== v["logo.image_url"]) this.logo.src = v["logo.image_url"];
    this.title.textContent = v["title.text"];
    this.title.hidden = !v["title.text"];
    // Participants without video are ready as soon as their placeholder is drawn; one whose
    // video is published but not here yet is waited for.
    if (placed.length && placed.every((p) => !this.streamOf(p.tile) && !this.awaited(p.tile)))
      requestAnimationFrame(() => this.onReady("placeholder"));
  }

  /** Whether `tile`'s video is published but not playing yet. */
  awaited(tile) {
    const p = tile.participant;
    return tile.kind === "screen" ? !!p.screenPublished && !p.screen : !!p.cameraPublished && !p.camera;
  }

  streamOf(tile) {
    return tile.kind === "screen" ? tile.participant.screen : tile.participant.camera;
  }

  /** The element of `tile`, made on first use. */
  tile(tile) {
    let t = this.tiles.get(tile.key);
    if (!t) {
      const el = element("div", `reel-tile reel-tile--${tile.kind}`, this.stage);
      el.dataset.participant = tile.participant.id;
      const placeholder = element("div", "reel-placeholder", el);
      element("span", "reel-initials", placeholder);
      const video = element("video", "reel-video", el);
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      const label = element("div", "reel-label", el);
      element("span", "reel-label-name", label);
      t = { el, video, label, stream: null };
      this.tiles.set(tile.key, t);
    }
    const p = tile.participant;
    const stream = this.streamOf(tile);
    if (t.stream !== stream) {
      t.stream = stream;
      t.video.srcObject = stream;
      if (stream) {
        const first = () => this.onReady("video");
        if (t.video.requestVideoFrameCallback) t.video.requestVideoFrameCallback(first);
        else t.video.addEventListener("playing", first, { once: true });
        t.video.play().catch(() => {});
      }
    }
    const name = tile.kind === "screen" ? `${p.name} (screen)` : p.name;
    t.el.querySelector(".reel-label-name").textContent = name;
    t.el.querySelector(".reel-initials").textContent = initials(p.name);
    t.el.classList.toggle("reel-tile--no-video", !stream);
    t.el.classList.toggle("reel-tile--speaking", tile.kind === "camera" && p.id === this.roster.dominant);
    t.el.classList.toggle("reel-tile--pinned", this.roster.pinned.has(p.id));
    return t;
  }

  place(t, p, i) {
    for (const role of ["cell", "main", "bar", "pip"]) t.el.classList.toggle(`reel-tile--${role}`, role === p.role);
    Object.assign(t.el.style, {
      left: `${p.x}px`,
      top: `${p.y}px`,
      width: `${p.w}px`,
      height: `${p.h}px`,
      zIndex: p.role === "pip" ? 2 : 1,
      order: i,
    });
  }
}
