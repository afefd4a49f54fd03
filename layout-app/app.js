// The layout app: `window.setupLayout(config)` draws a call (or synthetic participants) as a
// layout, and shows `#egress-ready-for-capture` once there is something worth recording.
//
// config: { call_type, call_id, token, base_url, layout, options, external_css_url,
//           source: "call" | "synthetic", synthetic: { participants, screenshare,
//           speaker_interval_ms, still }, ready_timeout_ms, show_warnings, warnings }

import { applyOptions, resolveOptions } from "./options.js";
import { Roster } from "./roster.js";
import { Stage } from "./stage.js";

const LAYOUTS = ["grid", "spotlight", "single-participant", "mobile"];

/** Adds the readiness marker once, saying why it appeared. */
function ready(reason) {
  if (document.getElementById("egress-ready-for-capture")) return;
  const marker = document.createElement("div");
  marker.id = "egress-ready-for-capture";
  marker.dataset.reason = reason;
  marker.hidden = true;
  document.body.append(marker);
}

/** Loads a stylesheet after the built-in ones; resolves when it loaded or failed. */
function stylesheet(url, problems) {
  return new Promise((done) => {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = url;
    link.className = "reel-external-css";
    link.onload = done;
    link.onerror = () => {
      problems.push(`cannot load the external stylesheet ${url}`);
      done();
    };
    document.head.append(link);
  });
}

function showWarnings(root, problems) {
  const box = document.createElement("ul");
  box.className = "reel-warnings";
  for (const p of problems) {
    const li = document.createElement("li");
    li.textContent = p;
    box.append(li);
  }
  root.append(box);
}

window.setupLayout = async function setupLayout(config = {}) {
  const problems = [...(config.warnings || [])];
  let layout = String(config.layout || "spotlight").replace("_", "-");
  if (!LAYOUTS.includes(layout)) {
    problems.push(`unknown layout "${config.layout}": drawing spotlight`);
    layout = "spotlight";
  }
  const resolved = await resolveOptions(layout, config.options);
  problems.push(...resolved.problems);
  const root = document.getElementById("reel-layout") || document.body.appendChild(document.createElement("div"));
  root.id = "reel-layout";
  await applyOptions(root, resolved);
  if (config.external_css_url) await stylesheet(config.external_css_url, problems);

  const roster = new Roster();
  // While a screen is shared, the screen-share layout is drawn with its own defaults (the
  // spotlight's bar, not a grid's share of the frame), and the options given to both.
  const shareLayout = resolved.values.screenshare_layout;
  const shared = shareLayout === layout ? resolved : await resolveOptions(shareLayout, config.options);
  const stage = new Stage(root, roster, layout, { [layout]: resolved.values, [shareLayout]: shared.values }, ready);
  const app = { config, roster, stage, problems, controls: null };
  window.reelLayout = app;
  setTimeout(() => ready("timeout"), config.ready_timeout_ms ?? 10000);
  for (const p of problems) console.warn(`reel layout: ${p}`);
  if (config.show_warnings && problems.length) showWarnings(root, problems);

  if (config.source === "synthetic") {
    const { synthesize } = await import("./synthetic.js");
    const s = config.synthetic || {};
    app.controls = synthesize(roster, s.participants ?? 6, {
      screenshare: s.screenshare,
      speakerIntervalMs: s.speaker_interval_ms,
      still: s.still,
    });
  } else {
    const { joinCall, playoutDelay } = await import("./call.js");
    try {
      app.call = await joinCall(roster, config);
      window.reelPlayoutDelay = () => playoutDelay(app.call.pc);
    } catch (e) {
      console.error(`reel layout: cannot play the call: ${e.message}`);
    }
  }
  stage.render();
  return app;
};
