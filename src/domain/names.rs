//! Safe names for files and directories made from what users supply (user ids, prefixes),
//! and the names of recorded files that both the recorders and `raw-recording` make.

use sha2::{Digest, Sha256};

/// `text` as one path component: ASCII letters, digits, `.`, `-`, `_` and `@` are kept and
/// anything else becomes `_`; the result is never empty, never starts with a dot and has at
/// most `max` bytes. When anything had to change, the first 8 hex digits of the original's
/// SHA-256 are appended, so that different inputs keep different names.
pub fn component(text: &str, max: usize) -> String {
    safe(text, max, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@')
    })
}

/// `text` as part of a file name that lists and URLs carry as they are: like [`component`],
/// with ASCII letters, digits, `-` and `_` only.
pub fn file_part(text: &str, max: usize) -> String {
    safe(text, max, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
    })
}

/// Longest user id or session id in an individual file's name.
const MAX_NAME_PART: usize = 64;

/// The name of a participant session's individual file of `content` (`audio_only`,
/// `video_only` or `audio_video`; `screen` for a screen share) in the call session of `call`
/// (type and id) that started at `session_ms`: the same whether the individual recorder or
/// `raw-recording` made it.
pub fn individual_file(
    call: (&str, &str),
    user: &str,
    session: &str,
    screen: bool,
    content: &str,
    session_ms: i64,
) -> String {
    format!(
        "individual_{}_{}_{}_{}_{}{content}_{session_ms}.mkv",
        file_part(call.0, MAX_NAME_PART),
        file_part(call.1, MAX_NAME_PART),
        file_part(user, MAX_NAME_PART),
        file_part(session, MAX_NAME_PART),
        if screen { "shared_" } else { "" },
    )
}

/// The name of a composite recording of `call` (type and id) requested at `requested_ms`:
/// `{prefix}_{type}_{id}_{requested ms}.{extension}`, or `{prefix}_{type}_{id}_audio_{requested
/// ms}.{extension}` for a file of its audio alone. Its `prefix` is `composite` unless the
/// request names one.
pub fn composite_file(
    prefix: &str,
    call: (&str, &str),
    audio: bool,
    requested_ms: i64,
    extension: &str,
) -> String {
    format!(
        "{}_{}_{}_{}{requested_ms}.{extension}",
        file_part(prefix, MAX_NAME_PART),
        file_part(call.0, MAX_NAME_PART),
        file_part(call.1, MAX_NAME_PART),
        if audio { "audio_" } else { "" },
    )
}

/// The name of a broadcast's file of one source (`None` for a stream's only source) whose
/// first media came at `first_ms`: `{stream}_{source or main}_{first ms}.{extension}`.
pub fn broadcast_file(
    stream: &str,
    source: Option<&str>,
    first_ms: i64,
    extension: &str,
) -> String {
    format!(
        "{}_{}_{first_ms}.{extension}",
        file_part(stream, MAX_NAME_PART),
        file_part(source.unwrap_or("main"), MAX_NAME_PART),
    )
}

fn safe(text: &str, max: usize, keep: fn(char) -> bool) -> String {
    let mut safe: String = text
        .chars()
        .map(|c| if keep(c) { c } else { '_' })
        .collect();
    if safe.starts_with('.') {
        safe.replace_range(..1, "_");
    }
    if safe.is_empty() {
        safe.push('_');
    }
    let max = max.max(16);
    if safe == text && !safe.is_empty() && safe.len() <= max {
        return safe;
    }
    let hash = hex::encode(&Sha256::digest(text.as_bytes())[..4]);
    safe.truncate(max - hash.len() - 1);
    format!("{safe}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::{component, file_part};

    #[test]
    fn hostile_names_stay_inside_and_distinct() {
        assert_eq!(component("alice", 64), "alice");
        assert_eq!(component("bob@example.com", 64), "bob@example.com");
        let up = component("../../etc", 64);
        assert!(!up.contains('/') && !up.starts_with('.'), "{up}");
        assert_ne!(component("../../etc", 64), component("__.._etc", 64));
        assert_ne!(component("a/b", 64), component("a_b", 64));
        let long = component(&"x".repeat(300), 64);
        assert_eq!(long.len(), 64);
        assert_ne!(long, component(&"x".repeat(301), 64));
        let unicode = component("Zoë 👋", 64);
        assert!(
            unicode.is_ascii() && unicode.starts_with("Zo__"),
            "{unicode}"
        );
        assert!(component("", 64).starts_with("_-"));
        assert_eq!(component(".", 64).len(), 10);
    }

    #[test]
    fn file_parts_keep_only_what_file_names_allow() {
        assert_eq!(file_part("alice_1-2", 64), "alice_1-2");
        let mail = file_part("bob@example.com", 64);
        assert!(mail.starts_with("bob_example_com-"), "{mail}");
        assert!(reel_file_name(&file_part("../../etc", 64)));
        assert!(reel_file_name(&file_part("Zoë 👋", 64)));
    }

    fn reel_file_name(part: &str) -> bool {
        crate::domain::FileName::parse(format!("individual_{part}.mkv")).is_ok()
    }
}
