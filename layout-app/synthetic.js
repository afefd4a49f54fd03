// Synthetic participants for the designers' preview: moving test pictures in known colours,
// with names; every fourth without video; a dominant speaker that changes every few seconds;
// optionally a shared screen.

/** Each participant's colour, by index: the centre of its picture is this colour. */
export const PALETTE = [
  "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
  "#fabed4", "#469990", "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000", "#ffd8b1",
  "#000075", "#ff1493", "#00ced1", "#ffd700", "#8b4513", "#7fff00", "#4b0082", "#ff7f50",
  "#2e8b57",
];

/** The centre colour of the shared screen. */
export const SCREEN_COLOR = "#f4f4f4";

const NAMES = [
  "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
  "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Uma", "Victor", "Walter", "Xena",
  "Yusuf", "Zoe", "Arthur", "Beatrix",
];

/** Whether synthetic participant `i` has no video. */
export const withoutVideo = (i) => i % 4 === 3;

/** A canvas drawn `fps` times a second by `draw(ctx, seconds)`, as a MediaStream. */
function painted(width, height, fps, still, draw) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const start = performance.now();
  const paint = () => draw(ctx, still ? 0 : (performance.now() - start) / 1000);
  paint();
  setInterval(paint, 1000 / fps);
  return canvas.captureStream(fps);
}

function camera(i, name, still) {
  const color = PALETTE[i % PALETTE.length];
  return painted(640, 360, 15, still, (ctx, t) => {
    ctx.fillStyle = color;
    ctx.fillRect(0, 0, 640, 360);
    // A band along the top with the name, and a square that moves along the bottom: the
    // middle of the picture stays the participant's colour.
    ctx.fillStyle = "rgba(0, 0, 0, 0.45)";
    ctx.fillRect(0, 0, 640, 56);
    ctx.fillStyle = "#ffffff";
    ctx.font = "bold 34px sans-serif";
    ctx.fillText(name, 16, 40);
    ctx.font = "24px monospace";
    ctx.fillText(t.toFixed(1).padStart(6), 540, 38);
    const x = ((t * 160) % 720) - 60;
    ctx.fillRect(x, 290, 48, 48);
  });
}

function screen(name, still) {
  return painted(1280, 720, 5, still, (ctx, t) => {
    ctx.fillStyle = SCREEN_COLOR;
    ctx.fillRect(0, 0, 1280, 720);
    ctx.fillStyle = "#203060";
    ctx.fillRect(0, 0, 1280, 120);
    ctx.fillStyle = "#ffffff";
    ctx.font = "bold 56px sans-serif";
    ctx.fillText(`${name}'s screen`, 48, 82);
    ctx.fillStyle = "#c03030";
    ctx.fillRect(48 + ((t * 40) % 400), 600, 320, 40);
  });
}

/**
 * Fills `roster` with `count` participants. `opts`: { screenshare: bool, speakerIntervalMs
 * (0: the first participant speaks throughout), still: bool (pictures do not move, for
 * screenshots that must match) }. Returns controls: { speak(i), share(on) }.
 */
export function synthesize(roster, count, opts = {}) {
  const ids = [];
  for (let i = 0; i < count; i++) {
    const name = NAMES[i % NAMES.length] + (i >= NAMES.length ? ` ${Math.floor(i / NAMES.length) + 1}` : "");
    const id = `synthetic-${i}`;
    ids.push(id);
    roster.upsert({ id, name, joinedAt: i, camera: withoutVideo(i) ? null : camera(i, name, opts.still) });
  }
  let screenStream = null;
  const controls = {
    speak(i) {
      roster.setDominant(ids[i] ?? null);
    },
    share(on) {
      const p = roster.participants.get(ids[0]);
      if (!p) return;
      if (on && !screenStream) screenStream = screen(p.name, opts.still);
      roster.upsert({ id: p.id, screen: on ? screenStream : null });
    },
  };
  controls.speak(0);
  if (opts.screenshare) controls.share(true);
  const interval = opts.speakerIntervalMs ?? 3000;
  if (interval > 0 && count > 1) {
    let next = 1;
    setInterval(() => controls.speak(next++ % count), interval);
  }
  return controls;
}
