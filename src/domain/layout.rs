//! Layout options: their schema, `layout-app/options.json`, which the layout app reads too,
//! and the check that settings apply to them, so that an unknown key or an ill-typed value is
//! refused with its name instead of being ignored by the page.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The schema, as the layout app ships it.
pub const SCHEMA_JSON: &str = include_str!("../../layout-app/options.json");

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    serde_json::from_str(SCHEMA_JSON).expect("layout-app/options.json is checked by a unit test")
});

#[derive(Debug, Deserialize)]
struct Schema {
    options: BTreeMap<String, Spec>,
    aliases: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Spec {
    #[serde(flatten)]
    kind: Kind,
}

/// What values a key takes.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Kind {
    Color,
    Enum {
        values: Vec<String>,
        #[serde(default)]
        aliases: BTreeMap<String, String>,
    },
    Url,
    Boolean,
    Length,
    Border,
    Aspect,
    Integer {
        min: i64,
        max: i64,
    },
    Percentage,
    Text,
}

/// The canonical key of `key` (itself, or what it is another name of), if it is an option.
pub fn canonical(key: &str) -> Option<&'static str> {
    let schema = &*SCHEMA;
    let key = schema.aliases.get(key).map_or(key, String::as_str);
    schema.options.get_key_value(key).map(|(k, _)| k.as_str())
}

/// Checks every key and value of `options`; the error names the first that is wrong.
pub fn check_options(options: &Map<String, Value>) -> Result<(), String> {
    for (key, value) in options {
        let Some(canonical) = canonical(key) else {
            return Err(format!(
                "unknown layout option {key} (layout-app/README.md lists them)"
            ));
        };
        let spec = &SCHEMA.options[canonical];
        if let Err(expected) = check_value(&spec.kind, value) {
            let got = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            return Err(format!("layout option {key} must be {expected}, not {got}"));
        }
    }
    Ok(())
}

/// `Err` says what `value` should have been.
fn check_value(kind: &Kind, value: &Value) -> Result<(), String> {
    let ok = match kind {
        Kind::Color => value.as_str().is_some_and(is_color),
        Kind::Enum { values, aliases } => value
            .as_str()
            .is_some_and(|v| values.iter().any(|x| x == v) || aliases.contains_key(v)),
        Kind::Url => value.as_str().is_some_and(is_url),
        Kind::Boolean => value.is_boolean(),
        Kind::Length => is_length(value),
        Kind::Border => value.is_boolean() || is_length(value),
        Kind::Aspect => value.as_str().is_some_and(is_aspect),
        Kind::Integer { min, max } => value
            .as_i64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
            .is_some_and(|n| (*min..=*max).contains(&n)),
        Kind::Percentage => value.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)),
        Kind::Text => value.as_str().is_some_and(|t| t.chars().count() <= 200),
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        Kind::Color => "a colour (#rgb, #rrggbb, #rrggbbaa, a colour name or rgb()/hsl())".into(),
        Kind::Enum { values, .. } => format!("one of {}", values.join(", ")),
        Kind::Url => "an http, https or data: URL, or empty".into(),
        Kind::Boolean => "true or false".into(),
        Kind::Length => "a number or a CSS length such as 10px or 5%".into(),
        Kind::Border => "true, false, a number or a CSS length such as 2px".into(),
        Kind::Aspect => "a ratio such as 16/9, or empty".into(),
        Kind::Integer { min, max } => format!("a whole number from {min} to {max}"),
        Kind::Percentage => "a number from 0 to 100".into(),
        Kind::Text => "a text of at most 200 characters".into(),
    })
}

/// `#rgb[a]`, `#rrggbb[aa]`, a colour keyword, or a colour function of plain arguments.
fn is_color(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix('#') {
        return matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    if s.bytes().all(|b| b.is_ascii_alphabetic()) {
        return (3..=20).contains(&s.len());
    }
    let Some((name, rest)) = s.split_once('(') else {
        return false;
    };
    let functions = [
        "rgb", "rgba", "hsl", "hsla", "hwb", "lab", "lch", "oklab", "oklch",
    ];
    functions.contains(&name.to_ascii_lowercase().as_str())
        && rest.strip_suffix(')').is_some_and(|args| {
            args.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" .,%/+-".contains(&b))
        })
}

fn is_url(s: &str) -> bool {
    s.is_empty()
        || ((s.starts_with("https://") || s.starts_with("http://") || s.starts_with("data:image/"))
            && !s.contains(['"', '\'', '(', ')', '\\', '\n']))
}

/// A non-negative number, or a string of one, bare or with a CSS unit.
fn is_length(v: &Value) -> bool {
    if let Some(n) = v.as_f64() {
        return n >= 0.0;
    }
    let Some(s) = v.as_str() else {
        return false;
    };
    let units = ["px", "rem", "em", "%", "vw", "vh", "vmin", "vmax"];
    let number = units
        .iter()
        .find_map(|u| s.strip_suffix(u))
        .unwrap_or(s)
        .trim();
    number
        .parse::<f64>()
        .is_ok_and(|n| n >= 0.0 && n.is_finite())
}

/// `w/h` or `w:h` with positive numbers.
fn is_aspect(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    s.split_once(['/', ':']).is_some_and(|(w, h)| {
        [w, h].iter().all(|x| {
            x.trim()
                .parse::<f64>()
                .is_ok_and(|n| n > 0.0 && n.is_finite())
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_schema_parses_and_every_alias_names_an_option() {
        assert!(SCHEMA.options.len() > 30);
        for (alias, key) in &SCHEMA.aliases {
            assert!(SCHEMA.options.contains_key(key), "{alias} -> {key}");
        }
    }

    #[test]
    fn the_seeds_example_is_accepted() {
        let options = json!({
            "logo.image_url": "https://example.com/logo.png",
            "logo.horizontal_position": "center",
            "title.text": "Building Stream Video Q&A",
            "title.horizontal_position": "center",
            "title.color": "black",
            "participant_label.border_radius": "0px",
            "participant.border_radius": "0px",
            "layout.spotlight.participants_bar_position": "top",
            "layout.background_color": "#f2f2f2",
            "participant.placeholder_background_color": "#1f1f1f",
            "layout.single-participant.padding_inline": "20%",
            "participant_label.background_color": "transparent",
            "participant.video_border_width": 3,
            "participant.aspect_ratio": "9/16",
            "grid.columns": 3,
            "screenshare_layout": "single_participant",
        });
        assert_eq!(check_options(options.as_object().unwrap()), Ok(()));
    }

    #[test]
    fn wrong_keys_and_values_are_named() {
        let cases = [
            (json!({"grid.colums": 3}), "grid.colums"),
            (json!({"grid.columns": "3"}), "grid.columns"),
            (json!({"grid.columns": 0}), "grid.columns"),
            (json!({"video.scale_mode": "stretch"}), "video.scale_mode"),
            (
                json!({"participant.label_display": "yes"}),
                "participant.label_display",
            ),
            (
                json!({"video.background_color": "#12345"}),
                "video.background_color",
            ),
            (json!({"title.color": "red; display: none"}), "title.color"),
            (json!({"grid.cell_padding": "10 px;"}), "grid.cell_padding"),
            (json!({"grid.margin": "ten"}), "grid.margin"),
            (
                json!({"logo.image_url": "javascript:alert(1)"}),
                "logo.image_url",
            ),
            (
                json!({"participant.aspect_ratio": "wide"}),
                "participant.aspect_ratio",
            ),
            (json!({"grid.size_percentage": 120}), "grid.size_percentage"),
        ];
        for (options, key) in cases {
            let err = check_options(options.as_object().unwrap()).unwrap_err();
            assert!(err.contains(&format!("option {key} ")), "{err}");
        }
    }
}
