// Where each tile goes: pure geometry, from the layout, the frame's size, the tiles and the
// spacing the page's CSS resolved. Every box is in CSS pixels of the frame.

/** The biggest box of aspect `a` (width/height) inside `w` x `h`. */
function fitted(w, h, a) {
  return w / h > a ? [h * a, h] : [w, w / a];
}

/**
 * The columns and rows for `n` tiles in `w` x `h` with `gap` between them, at most `maxC` x
 * `maxR`: the shape whose tiles of aspect `a` are largest; then the one with fewer empty
 * cells; then the one with more columns when the box is wide.
 */
export function gridShape(n, w, h, gap, maxC, maxR, a) {
  let best = null;
  for (let c = 1; c <= Math.min(maxC, n); c++) {
    const r = Math.ceil(n / c);
    if (r > maxR) continue;
    const [tw, th] = fitted((w - (c - 1) * gap) / c, (h - (r - 1) * gap) / r, a);
    const score = [Math.round(tw * th), -(c * r - n), w >= h ? c : -c];
    if (!best || compare(score, best.score) > 0) best = { c, r, score };
  }
  return best ? [best.c, best.r] : [maxC, maxR];
}

/** Compares two score lists, first element first. */
function compare(a, b) {
  const i = a.findIndex((x, k) => x !== b[k]);
  return i < 0 ? 0 : a[i] - b[i];
}

/**
 * Boxes for `tiles` on a grid in `box` ({x, y, w, h}): rows filled from the left, the last
 * row centred, the block centred. With `a` set, each tile keeps that aspect inside its cell.
 */
export function gridBoxes(count, box, gap, maxC, maxR, a, preferred) {
  if (count === 0) return [];
  const [c, r] = gridShape(count, box.w, box.h, gap, maxC, maxR, a || preferred);
  const cw = (box.w - (c - 1) * gap) / c;
  const ch = (box.h - (r - 1) * gap) / r;
  const [tw, th] = a ? fitted(cw, ch, a) : [cw, ch];
  const rows = Math.ceil(count / c);
  const blockH = rows * ch + (rows - 1) * gap;
  const out = [];
  for (let i = 0; i < count; i++) {
    const row = Math.floor(i / c);
    const inRow = Math.min(c, count - row * c);
    const rowW = inRow * cw + (inRow - 1) * gap;
    const cx = box.x + (box.w - rowW) / 2 + (i % c) * (cw + gap);
    const cy = box.y + (box.h - blockH) / 2 + row * (ch + gap);
    out.push({ x: cx + (cw - tw) / 2, y: cy + (ch - th) / 2, w: tw, h: th });
  }
  return out;
}

/**
 * The tiles to draw and their boxes.
 *
 * `view`: { layout: grid|spotlight|single-participant|mobile, width, height, tiles (in order
 * of importance: the first is the one to spotlight), page, spacing: { padding, margin,
 * padInline, padBlock }, opts: { columns, rows, pageSize, sizePct, position, aspect } }.
 * Returns { placed: [{ tile, x, y, w, h, role: cell|main|bar|pip }], pages }.
 */
export function arrange(view) {
  const { layout, width: W, height: H, tiles, spacing, opts } = view;
  const preferred = W >= H ? 16 / 9 : 9 / 16;
  const a = opts.aspect > 0 ? opts.aspect : 0;
  const m = spacing.margin;
  const placed = [];
  const put = (tile, b, role) => placed.push({ tile, x: b.x, y: b.y, w: b.w, h: b.h, role });
  if (tiles.length === 0) return { placed, pages: 1 };

  if (layout === "grid") {
    const size = opts.pageSize > 0 ? opts.pageSize : opts.columns * opts.rows;
    const pages = Math.max(1, Math.ceil(tiles.length / size));
    const page = ((view.page % pages) + pages) % pages;
    const shown = tiles.slice(page * size, page * size + size);
    const p = opts.sizePct / 100;
    const box = { x: (W * (1 - p)) / 2 + m, y: (H * (1 - p)) / 2 + m, w: W * p - 2 * m, h: H * p - 2 * m };
    // A page size beyond columns x rows needs more of one of them.
    const maxC = Math.max(opts.columns, Math.ceil(size / opts.rows));
    const maxR = Math.max(opts.rows, Math.ceil(size / maxC));
    gridBoxes(shown.length, box, spacing.padding, maxC, maxR, a, preferred).forEach((b, i) => put(shown[i], b, "cell"));
    return { placed, pages };
  }

  const frame = { x: m, y: m, w: W - 2 * m, h: H - 2 * m };
  const [main, ...others] = tiles;
  const mainBox = (b) => (a && main.kind === "camera" ? centred(b, fitted(b.w, b.h, a)) : b);

  if (layout === "single-participant") {
    const b = { x: spacing.padInline, y: spacing.padBlock, w: W - 2 * spacing.padInline, h: H - 2 * spacing.padBlock };
    put(main, mainBox(b), "main");
    return { placed, pages: 1 };
  }

  if (layout === "mobile") {
    put(main, mainBox({ x: 0, y: 0, w: W, h: H }), "main");
    if (others.length) {
      const w = W * 0.28;
      const h = w / (a || preferred);
      put(others[0], { x: W - w - m, y: H - h - m, w, h }, "pip");
    }
    return { placed, pages: 1 };
  }

  // spotlight: the main tile, and a bar of the others at `position`.
  if (others.length === 0) {
    put(main, mainBox(frame), "main");
    return { placed, pages: 1 };
  }
  const side = opts.position === "left" || opts.position === "right";
  const share = opts.sizePct / 100;
  const barSize = (side ? frame.w : frame.h) * share;
  let bar;
  let rest;
  if (opts.position === "top") {
    bar = { x: frame.x, y: frame.y, w: frame.w, h: barSize };
    rest = { x: frame.x, y: frame.y + barSize + m, w: frame.w, h: frame.h - barSize - m };
  } else if (opts.position === "left") {
    bar = { x: frame.x, y: frame.y, w: barSize, h: frame.h };
    rest = { x: frame.x + barSize + m, y: frame.y, w: frame.w - barSize - m, h: frame.h };
  } else if (opts.position === "right") {
    bar = { x: frame.x + frame.w - barSize, y: frame.y, w: barSize, h: frame.h };
    rest = { x: frame.x, y: frame.y, w: frame.w - barSize - m, h: frame.h };
  } else {
    bar = { x: frame.x, y: frame.y + frame.h - barSize, w: frame.w, h: barSize };
    rest = { x: frame.x, y: frame.y, w: frame.w, h: frame.h - barSize - m };
  }
  put(main, mainBox(rest), "main");
  // A side bar holds as many tiles as a bottom one: its columns and rows swap.
  const [c, r] = side ? [opts.rows, opts.columns] : [opts.columns, opts.rows];
  const inBar = others.slice(0, c * r);
  const cells = gridCells(inBar.length, bar, spacing.padding, c, r, side);
  cells.forEach((b, i) => put(inBar[i], a ? centred(b, fitted(b.w, b.h, a)) : b, "bar"));
  return { placed, pages: 1 };
}

/** `count` cells of a c x r grid over `box`, in order along the bar, centred along it. */
function gridCells(count, box, gap, c, r, vertical) {
  const cw = (box.w - (c - 1) * gap) / c;
  const ch = (box.h - (r - 1) * gap) / r;
  const along = vertical ? Math.min(r, count) : Math.min(c, count);
  const out = [];
  for (let i = 0; i < count; i++) {
    const [col, row] = vertical ? [Math.floor(i / r), i % r] : [i % c, Math.floor(i / c)];
    const offX = vertical ? 0 : (box.w - (along * cw + (along - 1) * gap)) / 2;
    const offY = vertical ? (box.h - (along * ch + (along - 1) * gap)) / 2 : 0;
    out.push({ x: box.x + offX + col * (cw + gap), y: box.y + offY + row * (ch + gap), w: cw, h: ch });
  }
  return out;
}

function centred(b, [w, h]) {
  return { x: b.x + (b.w - w) / 2, y: b.y + (b.h - h) / 2, w, h };
}
