//! Logging set-up.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Logs to stderr in `format`, filtered by `REEL_LOG` (default `info`; e.g. `reel=debug`).
pub fn init(format: LogFormat) {
    // The WebRTC engine warns about harmless remote quirks (e.g. payload types it ignores),
    // the browser driver about protocol messages newer than it knows.
    init_filtered(format, "info,str0m=error,chromiumoxide=error");
}

/// Logs to stderr in `format`, filtered by `REEL_LOG`, else by `default`.
pub fn init_filtered(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_env("REEL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
