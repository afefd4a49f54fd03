// Layout options: read against options.json (the schema reel's API checks too), resolved to
// their defaults for a layout, and put on the page as CSS custom properties and class names.

const schemaUrl = new URL("./options.json", import.meta.url);

/** The schema, fetched once. */
export const schema = fetch(schemaUrl).then((r) => r.json());

const LENGTH = /^(\d+(?:\.\d+)?|\.\d+)\s*(px|rem|em|%|vw|vh|vmin|vmax)?$/;

/** What a value of `spec` must be, or null when `value` is one. */
function problem(spec, value) {
  const str = typeof value === "string";
  switch (spec.type) {
    case "color":
      return str && CSS.supports("color", value) && !/[;{}]/.test(value) ? null : "a colour";
    case "enum":
      return str && (spec.values.includes(value) || value in (spec.aliases || {})) ? null : `one of ${spec.values.join(", ")}`;
    case "url":
      return str && (value === "" || /^(https?:\/\/|data:image\/)[^"'()\\\n]*$/.test(value)) ? null : "an http, https or data: URL";
    case "boolean":
      return typeof value === "boolean" ? null : "true or false";
    case "length":
      return isLength(value) ? null : "a number or a CSS length";
    case "border":
      return typeof value === "boolean" || isLength(value) ? null : "true, false or a length";
    case "aspect":
      return str && (value === "" || aspect(value) > 0) ? null : 'a ratio such as "16/9"';
    case "integer":
      return Number.isInteger(value) && value >= spec.min && value <= spec.max ? null : `a whole number from ${spec.min} to ${spec.max}`;
    case "percentage":
      return typeof value === "number" && value >= 0 && value <= 100 ? null : "a number from 0 to 100";
    case "text":
      return str && value.length <= 200 ? null : "a text of at most 200 characters";
    default:
      return `a value of type ${spec.type}`;
  }
}

function isLength(value) {
  return (typeof value === "number" && value >= 0) || (typeof value === "string" && LENGTH.test(value.trim()));
}

/** Width over height of "w/h" or "w:h"; NaN when it is not one. */
export function aspect(value) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*[/:]\s*(\d+(?:\.\d+)?)\s*$/.exec(value || "");
  return m && Number(m[1]) > 0 && Number(m[2]) > 0 ? Number(m[1]) / Number(m[2]) : NaN;
}

/**
 * Every option of `layout`, from `given` (flat dotted keys, aliases allowed) or its default.
 * Returns `{ values, problems }`: values by canonical key; problems as `key: what it must be`.
 * A key given under its own name wins over one given under an alias.
 */
export async function resolveOptions(layout, given = {}) {
  const s = await schema;
  const values = {};
  const explicit = new Set();
  const problems = [];
  const entries = Object.entries(given || {}).sort(([a], [b]) => (a in s.options) - (b in s.options));
  for (const [key, value] of entries) {
    const canonical = s.aliases[key] || key;
    const spec = s.options[canonical];
    if (!spec) {
      problems.push(`unknown layout option "${key}"`);
      continue;
    }
    const wrong = problem(spec, value);
    if (wrong) {
      problems.push(`layout option "${key}" must be ${wrong}, not ${JSON.stringify(value)}`);
      continue;
    }
    values[canonical] = spec.type === "enum" ? (spec.aliases || {})[value] || value : value;
    explicit.add(canonical);
  }
  for (const [key, spec] of Object.entries(s.options)) {
    if (key in values) continue;
    const d = spec.default;
    values[key] = d !== null && typeof d === "object" ? (layout in d ? d[layout] : d["*"]) : d;
  }
  return { values, explicit, problems };
}

/** A length option as CSS: bare numbers in the key's unit (`px` scales with the frame). */
function cssLength(value, unit) {
  if (typeof value === "string" && /[a-z%]$/.test(value.trim())) return value.trim();
  const n = Number(value);
  return unit === "rem" ? `${n}rem` : `calc(${n} * var(--reel-px))`;
}

const FIT = { fill: "cover", fit: "contain" };

/**
 * Sets the CSS custom properties of the options that were given (defaults live in
 * layout.css, so an external stylesheet can change them) and the class names that follow
 * every option's value, on `root`.
 */
export async function applyOptions(root, { values, explicit }) {
  const s = await schema;
  for (const key of explicit) {
    const spec = s.options[key];
    if (!spec.css) continue;
    const v = values[key];
    let css;
    if (spec.type === "length") css = cssLength(v, spec.unit);
    else if (spec.type === "border") css = v === true ? "calc(2 * var(--reel-px))" : v === false ? "0px" : cssLength(v, spec.unit);
    else if (key.endsWith("scale_mode")) css = FIT[v];
    else css = String(v);
    root.style.setProperty(spec.css, css);
  }
  const flags = {
    "reel-labels-hidden": !values["participant.label_display"],
    "reel-labels-borderless": !values["participant.label_display_border"],
    "reel-labels-square": !values["participant.label_border_rounded"],
    "reel-tiles-square": !values["participant.video_border_rounded"],
  };
  for (const [name, on] of Object.entries(flags)) root.classList.toggle(name, on);
  // reel-label-x-left, reel-label-y-bottom, reel-logo-x-center, ...
  const placed = {
    label: ["participant.label_horizontal_position", "participant.label_vertical_position"],
    logo: ["logo.horizontal_position", "logo.vertical_position"],
    title: ["title.horizontal_position", "title.vertical_position"],
  };
  for (const [what, keys] of Object.entries(placed)) {
    for (const cls of [...root.classList]) if (cls.startsWith(`reel-${what}-`)) root.classList.remove(cls);
    const [across, down] = keys.map((k) => values[k]);
    root.classList.add(`reel-${what}-x-${across}`, `reel-${what}-y-${down}`);
  }
  const image = values["layout.background_image"];
  root.style.setProperty("--reel-background-image", image ? `url("${image}")` : "none");
}
