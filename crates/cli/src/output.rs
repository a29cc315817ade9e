//! Small formatting helpers shared by the commands.

/// Compact JSON for one output line.
pub fn json_line(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `5.2s ago`-style ages (KnowledgeBeast's `last_access_age`).
pub fn human_age(age: Option<std::time::Duration>) -> String {
    match age {
        None => "never".to_owned(),
        Some(age) => format!("{:.1}s ago", age.as_secs_f64()),
    }
}

pub fn print_version() {
    println!(
        "mneme {} ({} {})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
}
