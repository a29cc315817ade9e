//! Resource figures for the health and monitoring endpoints, read from `/proc` and `statvfs`,
//! and the sampled time series behind KATO's `/stats` and `/metrics/{name}`.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Free and total space of the file system holding `path`, in bytes.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    let mut probe = path;
    // The data directory may not exist yet: ask about its nearest existing ancestor.
    while !probe.exists() {
        probe = probe.parent()?;
    }
    let probe = if probe.as_os_str().is_empty() {
        Path::new(".")
    } else {
        probe
    };
    let stat = rustix::fs::statvfs(probe).ok()?;
    let block = stat.f_frsize.max(1);
    Some((
        stat.f_bavail.saturating_mul(block),
        stat.f_blocks.saturating_mul(block),
    ))
}

/// Percentage of the file system holding `path` that is used.
pub fn disk_percent(path: &Path) -> f64 {
    match disk_space(path) {
        Some((free, total)) if total > 0 => 100.0 * (total - free.min(total)) as f64 / total as f64,
        _ => 0.0,
    }
}

/// Resident memory of this process in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    kib_field(&status, "VmRSS:") * 1024
}

/// Physical memory of the machine in bytes.
pub fn total_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    kib_field(&info, "MemTotal:") * 1024
}

fn kib_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// CPU time used by this process so far.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// One sample of every series.
#[derive(Clone, Debug)]
pub struct Sample {
    pub unix: f64,
    pub values: BTreeMap<&'static str, f64>,
}

/// The last hour of samples, oldest first.
#[derive(Debug)]
pub struct Series {
    samples: Mutex<VecDeque<Sample>>,
    last_cpu: Mutex<(Instant, Duration)>,
    keep: Duration,
}

impl Default for Series {
    fn default() -> Series {
        Series {
            samples: Mutex::new(VecDeque::new()),
            last_cpu: Mutex::new((Instant::now(), cpu_time())),
            keep: Duration::from_secs(3600),
        }
    }
}

/// Names of the sampled series (KATO's `/metrics/{name}`).
pub const SERIES: &[&str] = &[
    "cpu_percent",
    "memory_percent",
    "memory_rss_bytes",
    "disk_percent",
    "active_sessions",
    "requests_total",
    "errors_total",
    "requests_per_second",
    "average_response_time",
    "sessions_created",
    "sessions_deleted",
    "kb_documents",
    "kb_queries",
    "loaded_nodes",
    "load_average_1m",
];

/// KATO's names for the sampled series, each with the mneme series it reads. Both
/// generations of KATO's names are here: its own `/stats` test asks for the older ones
/// (`response_time`), its collector records the newer `kato_*` ones.
pub const KATO_SERIES: &[(&str, &str)] = &[
    ("response_time", "average_response_time"),
    ("memory_used_mb", "memory_used_mb"),
    ("kato_cpu_usage_percent", "cpu_percent"),
    ("kato_memory_usage_percent", "memory_percent"),
    ("kato_memory_usage_bytes", "memory_rss_bytes"),
    ("kato_disk_usage_percent", "disk_percent"),
    ("kato_requests_total", "requests_total"),
    ("kato_request_duration_seconds", "average_response_time"),
    ("kato_errors_total", "errors_total"),
    ("kato_sessions_active", "active_sessions"),
    ("session_operations", "session_operations"),
];

/// The mneme series a name (mneme's or KATO's) reads, if it is one.
pub fn series_source(name: &str) -> Option<&'static str> {
    SERIES.iter().find(|s| **s == name).copied().or_else(|| {
        KATO_SERIES
            .iter()
            .find(|(kato, _)| *kato == name)
            .map(|(_, source)| *source)
    })
}

/// Every series name `/stats` lists: mneme's, then KATO's.
pub fn series_names() -> impl Iterator<Item = (&'static str, &'static str)> {
    SERIES
        .iter()
        .map(|s| (*s, *s))
        .chain(KATO_SERIES.iter().copied())
}

/// The one-minute load average of the machine (`/proc/loadavg`).
pub fn load_average_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Bytes of the files under `dir`, recursively (0 when it cannot be read).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

impl Series {
    /// Process CPU use since the previous call, in percent of the machine (0..100, like
    /// psutil's system-wide `cpu_percent` that KATO reports).
    pub fn cpu_percent(&self) -> f64 {
        let mut last = self.last_cpu.lock().unwrap_or_else(|p| p.into_inner());
        let now = (Instant::now(), cpu_time());
        let wall = now.0.duration_since(last.0);
        let used = now.1.saturating_sub(last.1);
        *last = now;
        cpu_share(used, wall, cores())
    }

    pub fn record(&self, values: BTreeMap<&'static str, f64>) {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back(Sample { unix, values });
        let oldest = unix - self.keep.as_secs_f64();
        while samples.front().is_some_and(|s| s.unix < oldest) {
            samples.pop_front();
        }
    }

    /// Samples of the last `minutes`.
    pub fn since(&self, minutes: f64) -> Vec<Sample> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let from = now - minutes * 60.0;
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.iter().filter(|s| s.unix >= from).cloned().collect()
    }

    /// The latest sample, if any.
    pub fn latest(&self) -> Option<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .back()
            .cloned()
    }
}

/// `used` CPU time over `wall` time on `cores` cores, in percent of all of them (0..=100).
pub fn cpu_share(used: Duration, wall: Duration, cores: usize) -> f64 {
    let capacity = wall.as_secs_f64() * cores.max(1) as f64;
    if capacity <= 0.0 {
        0.0
    } else {
        (100.0 * used.as_secs_f64() / capacity).clamp(0.0, 100.0)
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_share_is_a_percentage_of_every_core() {
        let s = Duration::from_secs;
        assert_eq!(cpu_share(s(1), s(1), 1), 100.0);
        assert_eq!(cpu_share(s(2), s(1), 2), 100.0);
        assert_eq!(cpu_share(s(1), s(1), 4), 25.0);
        assert_eq!(cpu_share(s(1), s(2), 2), 25.0);
        // Clock granularity can make the measured time exceed the interval.
        assert_eq!(cpu_share(s(3), s(1), 2), 100.0);
        assert_eq!(cpu_share(s(1), Duration::ZERO, 2), 0.0);
    }

    #[test]
    fn the_sampled_cpu_percent_stays_within_0_and_100_with_every_core_busy() {
        let series = Series::default();
        let until = Instant::now() + Duration::from_millis(300);
        let busy: Vec<_> = (0..cores())
            .map(|_| {
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while Instant::now() < until {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
                    }
                    x
                })
            })
            .collect();
        for thread in busy {
            thread.join().unwrap();
        }
        let percent = series.cpu_percent();
        assert!((0.0..=100.0).contains(&percent), "{percent}");
    }
}
