//! What a listing, search or export selects, and how groups are ordered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{GroupStatus, Level};

/// Criteria over events; `None`/empty means "don't filter on this".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub level: Option<Level>,
    pub status: Option<GroupStatus>,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub user_id: Option<String>,
    pub group_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Free-text words; every word must occur in message, exception type or stack.
    pub q: Option<String>,
}

/// Order of a group listing; every order is descending with the id as tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupSort {
    CountDesc,
    #[default]
    LastSeenDesc,
    FirstSeenDesc,
}

impl GroupSort {
    pub fn code(self) -> u8 {
        match self {
            GroupSort::CountDesc => 1,
            GroupSort::LastSeenDesc => 2,
            GroupSort::FirstSeenDesc => 3,
        }
    }
}

/// Splits a search string into lower-cased words (at most 8, each at most 100 chars).
pub fn search_words(q: &str) -> Vec<String> {
    q.split_whitespace()
        .take(8)
        .map(|w| w.chars().take(100).collect::<String>().to_lowercase())
        .collect()
}

/// Most words and most `key:value` terms a group search uses, and most values a term lists.
const SEARCH_WORDS_MAX: usize = 8;
const SEARCH_TERMS_MAX: usize = 8;
const TERM_VALUES_MAX: usize = 20;

/// Whose groups a search selects by assignee; `M` names a member: as written (id, email or
/// `me`) when parsed, the member's id once looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignedTo<M = String> {
    Member(M),
    Nobody,
    Anybody,
}

impl AssignedTo {
    /// `who` as `assigned:` and the listing's `assignee` take it: `none`, else a member;
    /// `None` when blank.
    pub fn parse(who: &str) -> Option<AssignedTo> {
        match who.trim() {
            "" => None,
            w if w.eq_ignore_ascii_case("none") => Some(AssignedTo::Nobody),
            w => Some(AssignedTo::Member(w.to_owned())),
        }
    }
}

/// A half-open range `[from, until)` of a group's count or of one of its times (epoch
/// milliseconds); `None` leaves that end open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

/// One `key:value` term of a group search; a term listing values (`level:[error, fatal]`)
/// selects a group having any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term<M = String> {
    Status(Vec<GroupStatus>),
    Assigned(Vec<AssignedTo<M>>),
    Level(Vec<Level>),
    /// An event of one of these releases.
    Release(Vec<String>),
    /// The first event named one of these releases.
    FirstRelease(Vec<String>),
    /// An event carrying the tag `.0` with one of these values.
    Tag(String, Vec<String>),
    /// An event of one of these environments.
    Environment(Vec<String>),
    /// An event of one of these users (the event's user id).
    User(Vec<String>),
    /// An event with any value for one of these (`has:`): each a dimension of the group's
    /// per-value counts, `release`, `environment`, `user` or `tag:<key>`.
    Has(Vec<String>),
    /// Reopened by a regression and not resolved since (Sentry's `is:regressed`).
    Regressed,
    TimesSeen(Span),
    FirstSeen(Span),
    LastSeen(Span),
}

/// A term, or (`!key:value`) its negation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter<M = String> {
    pub negated: bool,
    pub term: Term<M>,
}

impl<M> Filter<M> {
    pub fn of(term: Term<M>) -> Self {
        Filter {
            negated: false,
            term,
        }
    }

    /// The members the filter names (`assigned:`), as written.
    pub fn members(&self) -> impl Iterator<Item = &M> {
        let list: &[AssignedTo<M>] = match &self.term {
            Term::Assigned(list) => list,
            _ => &[],
        };
        list.iter().filter_map(|a| match a {
            AssignedTo::Member(m) => Some(m),
            _ => None,
        })
    }

    /// The same filter with each member `f` names otherwise (looked up).
    pub fn map_members<N>(self, mut f: impl FnMut(M) -> N) -> Filter<N> {
        let term = match self.term {
            Term::Assigned(list) => Term::Assigned(
                list.into_iter()
                    .map(|a| match a {
                        AssignedTo::Member(m) => AssignedTo::Member(f(m)),
                        AssignedTo::Nobody => AssignedTo::Nobody,
                        AssignedTo::Anybody => AssignedTo::Anybody,
                    })
                    .collect(),
            ),
            Term::Status(v) => Term::Status(v),
            Term::Level(v) => Term::Level(v),
            Term::Release(v) => Term::Release(v),
            Term::FirstRelease(v) => Term::FirstRelease(v),
            Term::Tag(k, v) => Term::Tag(k, v),
            Term::Environment(v) => Term::Environment(v),
            Term::User(v) => Term::User(v),
            Term::Has(v) => Term::Has(v),
            Term::Regressed => Term::Regressed,
            Term::TimesSeen(s) => Term::TimesSeen(s),
            Term::FirstSeen(s) => Term::FirstSeen(s),
            Term::LastSeen(s) => Term::LastSeen(s),
        };
        Filter {
            negated: self.negated,
            term,
        }
    }
}

/// A group search written as Sentry's issue search is: words, each of which the title or the
/// culprit must contain (a `"quoted phrase"` counts as one word), and `key:value` terms, each
/// of which a group must meet:
/// - `is:unresolved|resolved|ignored|assigned|unassigned`, `assigned:<member, me or none>`,
///   `level:`, `release:` (an event of it), `firstRelease:`, any other key a tag
///   (`browser:Chrome`); a value may be quoted (`release:"summer sale"`), or a list in
///   brackets (`level:[error, fatal]`: any of them);
/// - `times_seen:` with `>`, `>=`, `<`, `<=` or `=` (`times_seen:>100`);
/// - `age:` / `firstSeen:` and `lastSeen:`, relative (`-24h`: within the last 24 hours,
///   `+7d`: longer ago than 7 days; units s, m, h, d, w) or against a date or a time
///   (`lastSeen:>=2026-11-01`, `firstSeen:2026-11-01`: on that day, UTC);
/// - `!` before a term negates it (`!is:resolved`, `!browser:Chrome`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSearch {
    pub words: Vec<String>,
    pub filters: Vec<Filter>,
}

/// Splits `q` on blanks outside double quotes and outside a term's `[list]`; a token's quotes
/// are dropped.
fn search_tokens(q: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut listed = false;
    let mut any = false;
    for c in q.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '[' if !quoted && current.ends_with(':') => {
                listed = true;
                current.push(c);
            }
            ']' if listed && !quoted => {
                listed = false;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted && !listed => {
                if any {
                    tokens.push(std::mem::take(&mut current));
                }
                any = false;
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        tokens.push(current);
    }
    tokens.retain(|t| !t.is_empty());
    tokens
}

/// How a term compares: `>`, `>=`, `<`, `<=`, or equal (`=` or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

fn split_op(value: &str) -> (Op, &str) {
    for (prefix, op) in [
        (">=", Op::Ge),
        ("<=", Op::Le),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ] {
        if let Some(rest) = value.strip_prefix(prefix) {
            return (op, rest.trim_start());
        }
    }
    (Op::Eq, value)
}

/// The span `op at` selects, where `at` is written to the precision `unit` (a date is its
/// whole day, a count is itself): `<=2026-11-01` takes all of that day.
fn span(op: Op, at: i64, unit: i64) -> Span {
    let after = at.saturating_add(unit);
    match op {
        Op::Gt => Span {
            from: Some(after),
            until: None,
        },
        Op::Ge => Span {
            from: Some(at),
            until: None,
        },
        Op::Lt => Span {
            from: None,
            until: Some(at),
        },
        Op::Le => Span {
            from: None,
            until: Some(after),
        },
        Op::Eq => Span {
            from: Some(at),
            until: Some(after),
        },
    }
}

/// A count term's value: `100`, `>100`, `<=5`.
fn count_span(value: &str) -> Result<Span, String> {
    let (op, n) = split_op(value);
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| "must be a count, with >, >=, <, <= or = before it".to_owned())?;
    Ok(span(op, n, 1))
}

/// A time term's value: relative to `now` (`-24h` within the last 24 hours, `+7d` longer ago
/// than 7 days) or a UTC date or time with an operator before it.
fn time_span(value: &str, now: DateTime<Utc>) -> Result<Span, String> {
    let form = || {
        "must be -24h (within the last 24 hours), +7d (longer ago), or a date or time such as \
         >=2026-11-01 or <2026-11-01T12:00:00Z"
            .to_owned()
    };
    if let Some(sign @ ('-' | '+')) = value.chars().next() {
        let rest = &value[1..];
        let split = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (n, unit) = rest.split_at(split);
        let n: i64 = n.parse().map_err(|_| form())?;
        let unit_secs = match unit.to_ascii_lowercase().as_str() {
            "s" => 1,
            "m" | "min" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(form()),
        };
        let ago = n
            .checked_mul(unit_secs * 1_000)
            .and_then(|ms| now.timestamp_millis().checked_sub(ms))
            .ok_or_else(form)?;
        return Ok(if sign == '-' {
            Span {
                from: Some(ago),
                until: None,
            }
        } else {
            Span {
                from: None,
                until: Some(ago),
            }
        });
    }
    let (op, at) = split_op(value);
    if let Ok(day) = chrono::NaiveDate::parse_from_str(at, "%Y-%m-%d") {
        let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
        return Ok(span(op, start.timestamp_millis(), 86_400_000));
    }
    let time = DateTime::parse_from_rfc3339(at)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map_err(|_| form())?;
    // A time is as precise as written: to the second, or to the millisecond.
    let unit = if time.timestamp_subsec_millis() == 0 && !at.contains('.') {
        1_000
    } else {
        1
    };
    Ok(span(op, time.timestamp_millis(), unit))
}

/// A term's values: one, or a `[list]` of at most [`TERM_VALUES_MAX`].
fn term_values(value: &str) -> Result<Vec<String>, String> {
    let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) else {
        return Ok(vec![value.to_owned()]);
    };
    let values: Vec<String> = list
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() || values.len() > TERM_VALUES_MAX {
        return Err(format!("a [list] holds from 1 to {TERM_VALUES_MAX} values"));
    }
    Ok(values)
}

/// An `is:` value: a status, whether assigned, or regressed.
enum Is {
    Status(GroupStatus),
    Assigned(AssignedTo),
    Regressed,
}

fn is_value(v: &str) -> Option<Is> {
    Some(match v.to_ascii_lowercase().as_str() {
        "regressed" => Is::Regressed,
        "assigned" => Is::Assigned(AssignedTo::Anybody),
        "unassigned" => Is::Assigned(AssignedTo::Nobody),
        // Sentry calls ignoring "archiving".
        "archived" => Is::Status(GroupStatus::Ignored),
        v => Is::Status(GroupStatus::parse(v)?),
    })
}

/// Reads one term; `Err` is why its value is refused.
fn term(key: &str, value: &str, now: DateTime<Utc>) -> Result<Term, String> {
    Ok(match key.to_ascii_lowercase().as_str() {
        "is" => {
            let mut statuses = Vec::new();
            let mut assigned = Vec::new();
            let mut regressed = false;
            for v in term_values(value)? {
                match is_value(&v) {
                    Some(Is::Status(s)) => statuses.push(s),
                    Some(Is::Assigned(a)) => assigned.push(a),
                    Some(Is::Regressed) => regressed = true,
                    None => {
                        return Err(format!(
                            "{v:?}: must be unresolved, resolved, ignored, assigned, unassigned \
                             or regressed"
                        ));
                    }
                }
            }
            match (statuses.is_empty(), assigned.is_empty(), regressed) {
                (false, true, false) => Term::Status(statuses),
                (true, false, false) => Term::Assigned(assigned),
                (true, true, true) => Term::Regressed,
                _ => {
                    return Err(
                        "a list mixes statuses, assigned/unassigned and regressed".to_owned()
                    );
                }
            }
        }
        "assigned" | "assigned_to" => {
            let list: Vec<_> = term_values(value)?
                .iter()
                .filter_map(|v| AssignedTo::parse(v))
                .collect();
            if list.is_empty() {
                return Err("names no member (give an id, an email, me or none)".to_owned());
            }
            Term::Assigned(list)
        }
        "level" => Term::Level(
            term_values(value)?
                .iter()
                .map(|v| {
                    Level::parse(v).ok_or_else(|| {
                        format!("{v:?}: must be debug, info, warning, error or fatal")
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        "release" => Term::Release(term_values(value)?),
        "environment" | "env" => Term::Environment(term_values(value)?),
        "user" | "user.id" | "user_id" => Term::User(term_values(value)?),
        "has" => Term::Has(
            term_values(value)?
                .into_iter()
                .map(|v| match v.to_ascii_lowercase().as_str() {
                    "release" | "environment" => v.to_ascii_lowercase(),
                    "user" | "user.id" | "user_id" => "user".to_owned(),
                    _ => format!("tag:{v}"),
                })
                .collect(),
        ),
        "firstrelease" | "first_release" => Term::FirstRelease(term_values(value)?),
        "times_seen" | "timesseen" => Term::TimesSeen(count_span(value)?),
        "age" | "firstseen" | "first_seen" => Term::FirstSeen(time_span(value, now)?),
        "lastseen" | "last_seen" => Term::LastSeen(time_span(value, now)?),
        _ => Term::Tag(key.to_owned(), term_values(value)?),
    })
}

impl GroupSearch {
    /// Reads `q`, relative times against `now`; a term whose value does not fit its key is
    /// refused (422 `INVALID_TERM` on `query`). A token is a term only when its key is a name
    /// (letters, digits, `_`, `.`, `-`, after an optional `!`) and a value follows; `Error:` or
    /// `http://host` stay words.
    pub fn parse(q: &str, now: DateTime<Utc>) -> Result<GroupSearch, crate::error::Error> {
        let bad =
            |message: String| crate::error::Error::invalid_field("query", message, "INVALID_TERM");
        let mut out = GroupSearch::default();
        for token in search_tokens(q) {
            let (negated, body) = match token.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, token.as_str()),
            };
            let pair = body.split_once(':').filter(|(k, v)| {
                !k.is_empty()
                    && !v.is_empty()
                    && !v.starts_with("//")
                    && k.chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
            });
            let Some((key, value)) = pair else {
                if out.words.len() < SEARCH_WORDS_MAX {
                    out.words
                        .push(token.chars().take(100).collect::<String>().to_lowercase());
                }
                continue;
            };
            if out.filters.len() == SEARCH_TERMS_MAX {
                return Err(bad(format!("at most {SEARCH_TERMS_MAX} key:value terms")));
            }
            let term = term(key, value, now).map_err(|why| bad(format!("{key}:{value}: {why}")))?;
            out.filters.push(Filter { negated, term });
        }
        Ok(out)
    }

    /// Whether a term (not negated) that `kind` picks out is in the search: the request's
    /// field of the same meaning then gives way to it.
    pub fn selects(&self, kind: fn(&Term) -> bool) -> bool {
        self.filters.iter().any(|f| !f.negated && kind(&f.term))
    }

    /// Adds the listing request's own fields as filters, each unless a term of the same
    /// meaning is in the search (the term takes precedence): a status (read by `status` only
    /// when no term replaces it, so a field a term replaces is not checked), an assignee
    /// (`none`, a member), a first release (blank: none).
    pub fn with_fields<E>(
        mut self,
        status: impl FnOnce() -> Result<Option<GroupStatus>, E>,
        assignee: &str,
        first_release: &str,
    ) -> Result<GroupSearch, E> {
        let mut fields = Vec::new();
        if !self.selects(|t| matches!(t, Term::Status(_)))
            && let Some(s) = status()?
        {
            fields.push(Term::Status(vec![s]));
        }
        if let Some(a) = AssignedTo::parse(assignee)
            .filter(|_| !self.selects(|t| matches!(t, Term::Assigned(_))))
        {
            fields.push(Term::Assigned(vec![a]));
        }
        let first_release = first_release.trim();
        if !first_release.is_empty() && !self.selects(|t| matches!(t, Term::FirstRelease(_))) {
            fields.push(Term::FirstRelease(vec![first_release.to_owned()]));
        }
        self.filters.extend(fields.into_iter().map(Filter::of));
        Ok(self)
    }
}

#[cfg(test)]
mod search_tests {
    use super::*;

    fn parse(q: &str) -> GroupSearch {
        GroupSearch::parse(q, now()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-12-07T12:00:00Z".parse().unwrap()
    }

    fn terms(q: &str) -> Vec<Term> {
        parse(q).filters.into_iter().map(|f| f.term).collect()
    }

    fn ms(t: &str) -> Option<i64> {
        Some(t.parse::<DateTime<Utc>>().unwrap().timestamp_millis())
    }

    #[test]
    fn words_terms_and_quotes() {
        let s = parse(
            r#"Timeout is:resolved assigned:me level:warning release:web@2.0 firstRelease:"summer sale" browser:Chrome "connection refused""#,
        );
        assert_eq!(s.words, ["timeout", "connection refused"]);
        assert_eq!(
            s.filters,
            [
                Filter::of(Term::Status(vec![GroupStatus::Resolved])),
                Filter::of(Term::Assigned(vec![AssignedTo::Member("me".into())])),
                Filter::of(Term::Level(vec![Level::Warning])),
                Filter::of(Term::Release(vec!["web@2.0".into()])),
                Filter::of(Term::FirstRelease(vec!["summer sale".into()])),
                Filter::of(Term::Tag("browser".into(), vec!["Chrome".into()])),
            ]
        );
        assert!(s.selects(|t| matches!(t, Term::Status(_))));
        assert!(!s.selects(|t| matches!(t, Term::TimesSeen(_))));
    }

    #[test]
    fn colons_in_words_stay_words() {
        let s = parse("TypeError: http://shop.example/cart :x !wow");
        assert_eq!(
            s.words,
            ["typeerror:", "http://shop.example/cart", ":x", "!wow"]
        );
        assert!(s.filters.is_empty());
        assert_eq!(
            terms("is:unassigned is:archived assigned:none"),
            [
                Term::Assigned(vec![AssignedTo::Nobody]),
                Term::Status(vec![GroupStatus::Ignored]),
                Term::Assigned(vec![AssignedTo::Nobody]),
            ]
        );
    }

    #[test]
    fn request_fields_give_way_to_terms() {
        let s = parse("is:resolved")
            .with_fields(|| Err::<Option<GroupStatus>, ()>(()), "none", " shop@1 ")
            .expect("the status field is not read when a term replaces it");
        assert_eq!(
            s.filters,
            [
                Filter::of(Term::Status(vec![GroupStatus::Resolved])),
                Filter::of(Term::Assigned(vec![AssignedTo::Nobody])),
                Filter::of(Term::FirstRelease(vec!["shop@1".into()])),
            ]
        );
        // A negated term does not replace the field.
        let s = parse("!is:resolved")
            .with_fields(|| Ok::<_, ()>(Some(GroupStatus::Ignored)), "", "")
            .unwrap();
        assert_eq!(s.filters.len(), 2);
    }

    #[test]
    fn negations_and_lists() {
        let s = parse("!is:resolved level:[error, fatal] !browser:[Chrome,\"Mobile Safari\"]");
        assert_eq!(
            s.filters,
            [
                Filter {
                    negated: true,
                    term: Term::Status(vec![GroupStatus::Resolved])
                },
                Filter::of(Term::Level(vec![Level::Error, Level::Fatal])),
                Filter {
                    negated: true,
                    term: Term::Tag(
                        "browser".into(),
                        vec!["Chrome".into(), "Mobile Safari".into()]
                    )
                },
            ]
        );
        assert!(!s.selects(|t| matches!(t, Term::Status(_))));
        assert!(s.selects(|t| matches!(t, Term::Level(_))));
    }

    #[test]
    fn counts_and_times() {
        let count = |from, until| Term::TimesSeen(Span { from, until });
        assert_eq!(
            terms("times_seen:>100 timesSeen:<=5 times_seen:7 times_seen:>=2 times_seen:<3"),
            [
                count(Some(101), None),
                count(None, Some(6)),
                count(Some(7), Some(8)),
                count(Some(2), None),
                count(None, Some(3)),
            ]
        );
        let day = 86_400_000;
        assert_eq!(
            terms("age:-24h lastSeen:+7d firstSeen:2026-11-01 lastSeen:<=2026-11-01"),
            [
                Term::FirstSeen(Span {
                    from: ms("2026-12-06T12:00:00Z"),
                    until: None
                }),
                Term::LastSeen(Span {
                    from: None,
                    until: ms("2026-11-30T12:00:00Z")
                }),
                Term::FirstSeen(Span {
                    from: ms("2026-11-01T00:00:00Z"),
                    until: ms("2026-11-01T00:00:00Z").map(|t| t + day)
                }),
                Term::LastSeen(Span {
                    from: None,
                    until: ms("2026-11-02T00:00:00Z")
                }),
            ]
        );
        assert_eq!(
            terms("last_seen:>2026-11-01T10:00:00Z first_seen:<2026-11-01T10:00:00.250+01:00"),
            [
                Term::LastSeen(Span {
                    from: ms("2026-11-01T10:00:01Z"),
                    until: None
                }),
                Term::FirstSeen(Span {
                    from: None,
                    until: ms("2026-11-01T09:00:00.250Z")
                }),
            ]
        );
    }

    /// Sentry's `has:`, `environment:`, `user.id:` and `is:regressed` read as the event
    /// attributes they name, not as tags.
    #[test]
    fn attributes_and_has() {
        assert_eq!(
            terms(
                "has:user has:[release, environment, browser] environment:prod user.id:42 is:regressed"
            ),
            [
                Term::Has(vec!["user".into()]),
                Term::Has(vec![
                    "release".into(),
                    "environment".into(),
                    "tag:browser".into()
                ]),
                Term::Environment(vec!["prod".into()]),
                Term::User(vec!["42".into()]),
                Term::Regressed,
            ]
        );
        let s = parse("!has:browser");
        assert!(s.filters[0].negated);
    }

    #[test]
    fn unknown_values_are_refused() {
        for q in [
            "is:sleeping",
            "level:loud",
            "level:[error, loud]",
            "is:[resolved, assigned]",
            "is:[regressed, resolved]",
            "times_seen:>many",
            "times_seen:-3",
            "age:24h",
            "age:-3y",
            "lastSeen:>yesterday",
            "browser:[]",
            "assigned:\" \"",
        ] {
            let e = GroupSearch::parse(q, now()).unwrap_err();
            assert!(format!("{e:?}").contains("INVALID_TERM"), "{q}: {e:?}");
        }
        let many = "a:1 ".repeat(SEARCH_TERMS_MAX + 1);
        assert!(GroupSearch::parse(&many, now()).is_err());
        assert_eq!(parse(""), GroupSearch::default());
    }

    #[test]
    fn members_are_looked_up_in_place() {
        let f = parse("assigned:[me, none, ana@example.com]")
            .filters
            .remove(0);
        assert_eq!(f.members().collect::<Vec<_>>(), ["me", "ana@example.com"]);
        let looked_up = f.map_members(|m| m.len());
        assert_eq!(
            looked_up.term,
            Term::Assigned(vec![
                AssignedTo::Member(2),
                AssignedTo::Nobody,
                AssignedTo::Member(15)
            ])
        );
    }
}
