//! Durations (`90d`, `1h30m`) and source start positions (`from:`) as specs write them.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Why a duration or start position does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not of the form `<number><unit>…`.
    #[error("`{0}` is not a duration; expected e.g. 500ms, 30s, 15m, 1h, 90d, 2w or 1h30m")]
    BadDuration(String),
    /// A duration of zero where a positive one is needed.
    #[error("`{0}` is zero; a positive duration is needed")]
    Zero(String),
    /// A duration too large to represent.
    #[error("`{0}` is too long")]
    TooLong(String),
    /// Neither a keyword, a duration nor an RFC 3339 time.
    #[error(
        "`{0}` is not a start position; expected earliest, latest, a duration back (e.g. 90d) or an RFC 3339 time"
    )]
    BadPosition(String),
}

/// Parses a duration of one or more `<number><unit>` pairs (units ms, s, m, h, d, w).
pub fn parse_duration(text: &str) -> Result<Duration, TimeError> {
    if !crate::names::is_duration(text) {
        return Err(TimeError::BadDuration(text.to_owned()));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let unit_len = if tail.starts_with("ms") { 2 } else { 1 };
        let (unit, tail) = tail.split_at(unit_len);
        let n: u64 = number
            .parse()
            .map_err(|_| TimeError::BadDuration(text.to_owned()))?;
        let part = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3_600).map(Duration::from_secs),
            "d" => n.checked_mul(86_400).map(Duration::from_secs),
            "w" => n.checked_mul(604_800).map(Duration::from_secs),
            _ => None,
        }
        .ok_or_else(|| TimeError::TooLong(text.to_owned()))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| TimeError::TooLong(text.to_owned()))?;
        rest = tail;
    }
    Ok(total)
}

/// Parses a duration that must be greater than zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, TimeError> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(TimeError::Zero(text.to_owned()));
    }
    Ok(d)
}

/// Where a source starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record Kafka still holds.
    Earliest,
    /// Only records produced from now on.
    Latest,
    /// Records not older than this, measured back from when the job starts.
    Ago(Duration),
    /// Records from this instant on.
    At(DateTime<Utc>),
}

impl StartPosition {
    /// Parses a `from:` value.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        match text {
            "earliest" => Ok(StartPosition::Earliest),
            "latest" => Ok(StartPosition::Latest),
            _ if crate::names::is_duration(text) => parse_duration(text).map(StartPosition::Ago),
            _ => DateTime::parse_from_rfc3339(text)
                .map(|t| StartPosition::At(t.with_timezone(&Utc)))
                .map_err(|_| TimeError::BadPosition(text.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_add_up_their_parts() {
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        assert!(matches!(
            parse_duration("1.5h"),
            Err(TimeError::BadDuration(_))
        ));
        assert!(matches!(
            parse_duration("999999999w999999999w999999999w"),
            Ok(_) | Err(TimeError::TooLong(_))
        ));
        assert!(matches!(
            parse_positive_duration("0s"),
            Err(TimeError::Zero(_))
        ));
    }

    #[test]
    fn start_positions_cover_every_form() {
        assert_eq!(
            StartPosition::parse("earliest").unwrap(),
            StartPosition::Earliest
        );
        assert_eq!(
            StartPosition::parse("latest").unwrap(),
            StartPosition::Latest
        );
        assert_eq!(
            StartPosition::parse("7d").unwrap(),
            StartPosition::Ago(Duration::from_secs(7 * 86_400))
        );
        assert!(matches!(
            StartPosition::parse("2026-01-01T00:00:00Z").unwrap(),
            StartPosition::At(_)
        ));
        assert!(matches!(
            StartPosition::parse("yesterday"),
            Err(TimeError::BadPosition(_))
        ));
    }
}
