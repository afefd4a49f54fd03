//! Logging set-up, and what commands print.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Logs to stderr in `format`, filtered by `REEL_LOG` (default `info`; e.g. `reel=debug`).
pub fn init(format: LogFormat) {
    // The WebRTC engine warns about harmless remote quirks (e.g. payload types it ignores),
    // the browser driver about protocol messages newer than it knows.
    init_filtered(format, "info,str0m=error,chromiumoxide=error");
}

/// The AWS SDK's crates, which log credentials and signed requests at debug and trace.
const CREDENTIAL_LOGGERS: [&str; 6] = [
    "aws_config",
    "aws_credential_types",
    "aws_sdk_s3",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
];

/// `directives` (as `REEL_LOG` takes them), with the crates that would log credentials kept
/// at `info` whatever they ask: no log level shows a secret.
pub fn filter(directives: &str) -> EnvFilter {
    let capped: Vec<String> = CREDENTIAL_LOGGERS
        .iter()
        .map(|target| format!("{target}=info"))
        .collect();
    let all = format!("{directives},{}", capped.join(","));
    EnvFilter::try_new(&all).unwrap_or_else(|_| EnvFilter::new(capped.join(",")))
}

/// Logs to stderr in `format`, filtered by `REEL_LOG`, else by `default`.
pub fn init_filtered(format: LogFormat, default: &str) {
    let wanted = std::env::var("REEL_LOG")
        .ok()
        .filter(|v| EnvFilter::try_new(v).is_ok())
        .unwrap_or_else(|| default.to_owned());
    let filter = filter(&wanted);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Writes `text` to standard output as it is: a closed output (`reel ... | head`) is an
/// error for the command to report, not a panic.
pub fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write to standard output: {e}")))
}
