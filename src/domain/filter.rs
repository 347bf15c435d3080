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

/// Most words and most `key:value` terms a group search uses.
const SEARCH_WORDS_MAX: usize = 8;
const SEARCH_TERMS_MAX: usize = 8;

/// Whose groups a search selects by assignee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignedTo {
    /// A member, as written (id, email or `me`).
    Member(String),
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

/// A group search written as Sentry's issue search is: words, each of which the title or the
/// culprit must contain (a `"quoted phrase"` counts as one word), and `key:value` terms:
/// `is:unresolved|resolved|ignored|assigned|unassigned`, `assigned:<member, me or none>`,
/// `level:`, `release:` (an event of it), `firstRelease:`, and any other key a tag
/// (`browser:Chrome`). A value may be quoted (`release:"summer sale"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSearch {
    pub words: Vec<String>,
    pub status: Option<GroupStatus>,
    pub assigned: Option<AssignedTo>,
    pub level: Option<Level>,
    pub release: Option<String>,
    pub first_release: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// Splits `q` on blanks outside double quotes; a token's quotes are dropped.
fn search_tokens(q: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in q.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
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

impl GroupSearch {
    /// Reads `q`; an `is:` or `level:` term with a value it does not know is refused (on
    /// `query`). A token is a term only when its key is a name (letters, digits, `_`, `.`,
    /// `-`) and a value follows; `Error:` or `http://host` stay words.
    pub fn parse(q: &str) -> Result<GroupSearch, crate::error::Error> {
        let bad =
            |message: String| crate::error::Error::invalid_field("query", message, "INVALID_TERM");
        let mut out = GroupSearch::default();
        let mut terms = 0;
        for token in search_tokens(q) {
            let term = token.split_once(':').filter(|(k, v)| {
                !k.is_empty()
                    && !v.is_empty()
                    && !v.starts_with("//")
                    && k.chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
            });
            let Some((key, value)) = term else {
                if out.words.len() < SEARCH_WORDS_MAX {
                    out.words
                        .push(token.chars().take(100).collect::<String>().to_lowercase());
                }
                continue;
            };
            terms += 1;
            if terms > SEARCH_TERMS_MAX {
                return Err(bad(format!("at most {SEARCH_TERMS_MAX} key:value terms")));
            }
            let value = value.to_owned();
            match key.to_ascii_lowercase().as_str() {
                "is" => match value.to_ascii_lowercase().as_str() {
                    "assigned" => out.assigned = Some(AssignedTo::Anybody),
                    "unassigned" => out.assigned = Some(AssignedTo::Nobody),
                    // Sentry calls ignoring "archiving".
                    "archived" => out.status = Some(GroupStatus::Ignored),
                    v => {
                        out.status = Some(GroupStatus::parse(v).ok_or_else(|| {
                            bad(format!(
                                "is:{value}: must be unresolved, resolved, ignored, assigned or unassigned"
                            ))
                        })?)
                    }
                },
                "assigned" | "assigned_to" => out.assigned = AssignedTo::parse(&value),
                "level" => {
                    out.level = Some(Level::parse(&value).ok_or_else(|| {
                        bad(format!(
                            "level:{value}: must be debug, info, warning, error or fatal"
                        ))
                    })?)
                }
                "release" => out.release = Some(value),
                "firstrelease" | "first_release" => out.first_release = Some(value),
                _ => out.tags.push((key.to_owned(), value)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod search_tests {
    use super::*;

    #[test]
    fn words_terms_and_quotes() {
        let s = GroupSearch::parse(
            r#"Timeout is:resolved assigned:me level:warning release:web@2.0 firstRelease:"summer sale" browser:Chrome "connection refused""#,
        )
        .unwrap();
        assert_eq!(s.words, ["timeout", "connection refused"]);
        assert_eq!(s.status, Some(GroupStatus::Resolved));
        assert_eq!(s.assigned, Some(AssignedTo::Member("me".into())));
        assert_eq!(s.level, Some(Level::Warning));
        assert_eq!(s.release.as_deref(), Some("web@2.0"));
        assert_eq!(s.first_release.as_deref(), Some("summer sale"));
        assert_eq!(s.tags, [("browser".to_owned(), "Chrome".to_owned())]);
    }

    #[test]
    fn colons_in_words_stay_words() {
        let s = GroupSearch::parse("TypeError: http://shop.example/cart :x").unwrap();
        assert_eq!(s.words, ["typeerror:", "http://shop.example/cart", ":x"]);
        assert!(s.tags.is_empty());
        let s = GroupSearch::parse("is:unassigned is:archived assigned:none").unwrap();
        assert_eq!(
            (s.status, s.assigned),
            (Some(GroupStatus::Ignored), Some(AssignedTo::Nobody))
        );
    }

    #[test]
    fn unknown_values_are_refused() {
        for q in ["is:sleeping", "level:loud"] {
            let e = GroupSearch::parse(q).unwrap_err();
            assert!(format!("{e:?}").contains("INVALID_TERM"), "{q}: {e:?}");
        }
        let many = "a:1 ".repeat(SEARCH_TERMS_MAX + 1);
        assert!(GroupSearch::parse(&many).is_err());
        assert_eq!(GroupSearch::parse("").unwrap(), GroupSearch::default());
    }
}
