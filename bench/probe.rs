//! What ffprobe says of a file, shared by the benchmarks.

use std::path::Path;

/// ffprobe's duration of `file`, in seconds (0 if it cannot tell).
pub fn duration(file: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}
