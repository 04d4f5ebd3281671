//! CPU time of processes and threads so far, from Linux `/proc` (the benchmarks report where
//! a request's time went with it).

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on every Linux build we run).
pub const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of a `/proc/.../stat` file (a process's or a thread's), in seconds.
pub fn stat_secs(path: &str) -> Option<f64> {
    stat_split(path).map(|(user, system)| user + system)
}

/// (utime, stime) of a `/proc/.../stat` file, in seconds.
pub fn stat_split(path: &str) -> Option<(f64, f64)> {
    parse(&std::fs::read_to_string(path).ok()?)
}

fn parse(stat: &str) -> Option<(f64, f64)> {
    // The command name may hold spaces and parentheses; the fields after its last closing
    // parenthesis are fixed: utime and stime are the 12th and 13th of them.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime / TICKS_PER_SEC, stime / TICKS_PER_SEC))
}

/// utime + stime of process `pid` (or `"self"`), in seconds.
pub fn process_secs(pid: impl std::fmt::Display) -> Option<f64> {
    stat_secs(&format!("/proc/{pid}/stat"))
}

/// (utime, stime) of process `pid` (or `"self"`), in seconds.
pub fn process_split(pid: impl std::fmt::Display) -> Option<(f64, f64)> {
    stat_split(&format!("/proc/{pid}/stat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_after_an_odd_command_name() {
        let stat = "4242 (tokio (rt) x) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse(stat), Some((2.5, 0.75)));
        assert_eq!(parse("4242 (cut short) S 1 2"), None);
        assert!(process_secs("self").is_some(), "this process, on Linux");
        assert!(process_split("self").is_some(), "this process, on Linux");
        assert!(process_secs(u32::MAX).is_none(), "no such process");
    }
}
