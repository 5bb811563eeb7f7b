//! Wall-clock helpers. Timestamps are stored as Unix seconds (i64) and shown
//! as RFC 3339 strings.

use time::OffsetDateTime;

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 rendering of a Unix timestamp, for JSON views.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
