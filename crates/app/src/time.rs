//! Wall-clock formatting shared by the APIs (UTC by hand; the local zone from jiff).

use std::time::{SystemTime, UNIX_EPOCH};

/// `time` as ISO 8601 UTC with microseconds and a `Z` (`2025-10-25T12:34:56.123456Z`).
pub fn iso(time: SystemTime) -> String {
    let mut out = iso_naive(time);
    out.push('Z');
    out
}

/// `time` as Python's `datetime.now(timezone.utc).isoformat()` prints it (with microseconds):
/// `2025-10-25T12:34:56.123456+00:00`.
pub fn iso_utc_offset(time: SystemTime) -> String {
    let mut out = iso_naive(time);
    out.push_str("+00:00");
    out
}

/// `time` in the machine's local zone (`TZ`, else `/etc/localtime`, else UTC) as Python's
/// `datetime.now().isoformat()` prints it (with microseconds): no zone.
pub fn iso_local(time: SystemTime) -> String {
    use jiff::tz::TimeZone;
    let offset = jiff::Timestamp::try_from(time).map_or(0, |t| {
        TimeZone::try_system()
            .unwrap_or(TimeZone::UTC)
            .to_offset(t)
            .seconds()
    });
    let shift = std::time::Duration::from_secs(u64::from(offset.unsigned_abs()));
    let local = if offset >= 0 {
        time.checked_add(shift)
    } else {
        time.checked_sub(shift)
    };
    iso_naive(local.unwrap_or(time))
}

/// `time` as Python's `datetime.utcnow().isoformat()` prints it: UTC, microseconds, no zone.
pub fn iso_naive(time: SystemTime) -> String {
    let micros = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(before) => -(before.duration().as_micros() as i64),
    };
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_761_395_696_123_456);
        assert_eq!(iso_naive(t), "2025-10-25T12:34:56.123456");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso(t), "2000-02-29T00:00:00.000000Z");
        assert_eq!(iso_utc_offset(t), "2000-02-29T00:00:00.000000+00:00");
    }

    #[test]
    fn local_time_is_utc_shifted_by_the_system_offset() {
        let t = UNIX_EPOCH + Duration::from_micros(1_761_395_696_123_456);
        let offset = jiff::tz::TimeZone::try_system()
            .unwrap_or(jiff::tz::TimeZone::UTC)
            .to_offset(jiff::Timestamp::try_from(t).unwrap())
            .seconds();
        let shifted = UNIX_EPOCH
            + Duration::from_micros((1_761_395_696_123_456 + i64::from(offset) * 1_000_000) as u64);
        let local = iso_local(t);
        assert_eq!(local, iso_naive(shifted));
        assert!(!local.ends_with('Z') && local.len() == 26, "{local}");
    }
}
