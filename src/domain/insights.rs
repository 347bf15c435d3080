//! Pure computations behind `InsightsService`: trend buckets and uptime from the server's
//! start/stop history. No I/O; the store hands in raw figures.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::error::Error;

/// One run of the server, as recorded (times in ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: Uuid,
    pub started_at: i64,
    /// Refreshed while running: where a run that never stopped cleanly is taken to have ended.
    pub last_alive_at: i64,
    pub stopped_at: Option<i64>,
}

/// How far back a trend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Year,
}

/// The size of a trend bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    Week,
    Month,
}

impl Period {
    pub fn parse(s: &str) -> Result<Period, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "week" => Ok(Period::Week),
            "day" => Ok(Period::Day),
            "month" => Ok(Period::Month),
            "year" => Ok(Period::Year),
            _ => Err(Error::invalid_field(
                "period",
                "must be one of day, week, month, year",
                "INVALID_ENUM",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
        }
    }

    pub fn length(self) -> Duration {
        match self {
            Period::Day => Duration::days(1),
            Period::Week => Duration::days(7),
            Period::Month => Duration::days(30),
            Period::Year => Duration::days(365),
        }
    }
}

impl Bucket {
    pub fn parse(s: &str) -> Result<Bucket, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "day" => Ok(Bucket::Day),
            "hour" => Ok(Bucket::Hour),
            "week" => Ok(Bucket::Week),
            "month" => Ok(Bucket::Month),
            _ => Err(Error::invalid_field(
                "group_by",
                "must be one of hour, day, week, month",
                "INVALID_ENUM",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }

    /// Start of the bucket holding `t` (weeks start on Monday, all in UTC).
    pub fn start(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let day = Utc
            .with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
            .single()
            .unwrap_or(t);
        match self {
            Bucket::Hour => day + Duration::hours(i64::from(chrono::Timelike::hour(&t))),
            Bucket::Day => day,
            Bucket::Week => day - Duration::days(i64::from(t.weekday().num_days_from_monday())),
            Bucket::Month => Utc
                .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
                .single()
                .unwrap_or(day),
        }
    }

    fn next(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Bucket::Hour => start + Duration::hours(1),
            Bucket::Day => start + Duration::days(1),
            Bucket::Week => start + Duration::days(7),
            Bucket::Month => {
                let (y, m) = if start.month() == 12 {
                    (start.year() + 1, 1)
                } else {
                    (start.year(), start.month() + 1)
                };
                Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                    .single()
                    .unwrap_or(start + Duration::days(31))
            }
        }
    }
}

/// One bucket of a trend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendPoint {
    pub start: DateTime<Utc>,
    pub errors: u64,
    pub resolved: u64,
    pub critical: u64,
}

/// The first instant a trend of `period` ending `now` covers: the start of the bucket that
/// holds `now - period`, so the first bucket is whole.
pub fn trend_start(period: Period, bucket: Bucket, now: DateTime<Utc>) -> DateTime<Utc> {
    bucket.start(now - period.length())
}

/// Buckets from `trend_start` to the one holding `now`, each with its events (from hourly
/// counts), resolutions and fatal events (times in ms).
pub fn trend(
    period: Period,
    bucket: Bucket,
    now: DateTime<Utc>,
    hourly_events: &[(i64, u64)],
    resolved_at: &[i64],
    fatal_at: &[i64],
) -> Vec<TrendPoint> {
    let mut points = Vec::new();
    let mut start = trend_start(period, bucket, now);
    while start <= now {
        let end = bucket.next(start);
        let (s, e) = (start.timestamp_millis(), end.timestamp_millis());
        let in_bucket = |ms: i64| ms >= s && ms < e;
        points.push(TrendPoint {
            start,
            errors: hourly_events
                .iter()
                .filter(|(h, _)| in_bucket(h * 3_600_000))
                .map(|(_, n)| n)
                .sum(),
            resolved: resolved_at.iter().filter(|t| in_bucket(**t)).count() as u64,
            critical: fatal_at.iter().filter(|t| in_bucket(**t)).count() as u64,
        });
        start = end;
    }
    points
}

/// Uptime figures from the run history.
#[derive(Debug, Clone, PartialEq)]
pub struct Uptime {
    pub percent_24h: f64,
    pub percent_7d: f64,
    pub percent_30d: f64,
    /// Down periods that began in the last 30 days.
    pub incidents_30d: u64,
    /// When the server last went down (ms), if ever.
    pub last_downtime: Option<i64>,
}

/// When a run ended: its clean stop, else now for the current run, else its last sign of life.
fn run_end(r: &Run, current: Uuid, now_ms: i64) -> i64 {
    match r.stopped_at {
        Some(t) => t,
        None if r.id == current => now_ms,
        None => r.last_alive_at,
    }
}

/// Share of each window the server ran, counted from its first recorded start when that is
/// later than the window's start (before that Faultline was not installed, not down).
pub fn uptime(runs: &[Run], current: Uuid, now: DateTime<Utc>) -> Uptime {
    let now_ms = now.timestamp_millis();
    let mut spans: Vec<(i64, i64)> = runs
        .iter()
        .map(|r| (r.started_at, run_end(r, current, now_ms).max(r.started_at)))
        .collect();
    spans.sort();
    // Merge overlaps (several servers on one database run at once).
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let first = merged.first().map(|s| s.0);
    let percent = |window: Duration| -> f64 {
        let Some(first) = first else { return 0.0 };
        let from = (now_ms - window.num_milliseconds()).max(first);
        if now_ms <= from {
            return 100.0;
        }
        let up: i64 = merged
            .iter()
            .map(|(s, e)| ((*e).min(now_ms) - (*s).max(from)).max(0))
            .sum();
        (up as f64 / (now_ms - from) as f64 * 100.0).clamp(0.0, 100.0)
    };
    let gaps: Vec<i64> = merged.windows(2).map(|w| w[0].1).collect();
    let since_30d = now_ms - Duration::days(30).num_milliseconds();
    // A last run that ended (no current run covers now) is an ongoing outage too.
    let mut downs = gaps.clone();
    if let Some(last) = merged.last()
        && last.1 < now_ms
        && !runs.iter().any(|r| r.id == current)
    {
        downs.push(last.1);
    }
    Uptime {
        percent_24h: percent(Duration::days(1)),
        percent_7d: percent(Duration::days(7)),
        percent_30d: percent(Duration::days(30)),
        incidents_30d: downs.iter().filter(|t| **t >= since_30d).count() as u64,
        last_downtime: downs.last().copied(),
    }
}

/// "2h 15m", "3d 4h", "45s": how the Error Logging System writes a duration.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn buckets_start_on_their_boundaries() {
        let t = at("2025-08-28T13:45:10Z"); // a Thursday
        assert_eq!(Bucket::Hour.start(t), at("2025-08-28T13:00:00Z"));
        assert_eq!(Bucket::Day.start(t), at("2025-08-28T00:00:00Z"));
        assert_eq!(Bucket::Week.start(t), at("2025-08-25T00:00:00Z"));
        assert_eq!(Bucket::Month.start(t), at("2025-08-01T00:00:00Z"));
        assert_eq!(
            Bucket::Month.next(at("2025-12-01T00:00:00Z")),
            at("2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn trend_counts_each_series_in_its_bucket() {
        let now = at("2025-08-29T12:00:00Z");
        let hour = |s: &str| at(s).timestamp() / 3600;
        let ms = |s: &str| at(s).timestamp_millis();
        let pts = trend(
            Period::Week,
            Bucket::Day,
            now,
            &[
                (hour("2025-08-29T03:00:00Z"), 5),
                (hour("2025-08-28T23:00:00Z"), 2),
            ],
            &[ms("2025-08-29T04:00:00Z")],
            &[ms("2025-08-28T23:30:00Z")],
        );
        assert_eq!(pts.len(), 8);
        assert_eq!(pts[0].start, at("2025-08-22T00:00:00Z"));
        let last = pts.last().unwrap();
        assert_eq!((last.errors, last.resolved, last.critical), (5, 1, 0));
        let prev = &pts[pts.len() - 2];
        assert_eq!((prev.errors, prev.resolved, prev.critical), (2, 0, 1));
    }

    #[test]
    fn uptime_counts_gaps_between_runs() {
        let now = at("2025-08-29T12:00:00Z");
        let ms = |s: &str| at(s).timestamp_millis();
        let cur = Uuid::now_v7();
        let runs = vec![
            Run {
                id: Uuid::now_v7(),
                started_at: ms("2025-08-29T00:00:00Z"),
                last_alive_at: ms("2025-08-29T05:00:00Z"),
                stopped_at: None,
            },
            Run {
                id: cur,
                started_at: ms("2025-08-29T06:00:00Z"),
                last_alive_at: ms("2025-08-29T06:00:00Z"),
                stopped_at: None,
            },
        ];
        let u = uptime(&runs, cur, now);
        assert_eq!(u.incidents_30d, 1);
        assert_eq!(u.last_downtime, Some(ms("2025-08-29T05:00:00Z")));
        // 11 of the 12 hours since the first start.
        assert!((u.percent_24h - 11.0 / 12.0 * 100.0).abs() < 1e-9, "{u:?}");
        let only = uptime(&runs[1..], cur, now);
        assert_eq!((only.percent_30d, only.incidents_30d), (100.0, 0));
    }

    #[test]
    fn durations_read_like_the_document() {
        assert_eq!(human_duration(8100.0), "2h 15m");
        assert_eq!(human_duration(45.0), "45s");
        assert_eq!(human_duration(90_000.0), "1d 1h");
    }
}
