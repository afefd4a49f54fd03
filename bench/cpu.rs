//! CPU time from `/proc`, shared by the benchmarks.

/// Linux reports process and thread times in these ticks per second.
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU seconds of the process `pid` (`self` for this one) or, given
/// `thread-self`, of the calling thread.
pub fn cpu_seconds(pid: &str) -> f64 {
    let path = if pid == "thread-self" {
        "/proc/thread-self/stat".to_owned()
    } else {
        format!("/proc/{pid}/stat")
    };
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / TICKS_PER_SECOND
}
