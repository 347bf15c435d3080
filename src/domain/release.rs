//! The order of a project's releases, as Sentry keeps it for "resolved in the next release":
//! two releases of one package whose versions parse (`package@1.2.3`, Sentry's release format,
//! read by Sentry's own parser) follow their versions; any other two follow when each was first
//! seen. So an old app version that keeps sending, or first sends after a newer one, does not
//! count as later.

use std::cmp::Ordering;

use sentry_release_parser::{Release, Version};

/// The package and version of `release` when it is in Sentry's versioned format.
fn versioned(release: &str) -> Option<(&str, Version<'_>)> {
    let parsed = Release::parse(release).ok()?;
    Some((parsed.package()?, parsed.version()?.clone()))
}

/// Whether release `a`, first seen at `a_seen`, came after `b`, first seen at `b_seen`.
pub fn later(a: &str, a_seen: i64, b: &str, b_seen: i64) -> bool {
    match (versioned(a), versioned(b)) {
        (Some((pa, va)), Some((pb, vb))) if pa == pb => va > vb,
        _ => a_seen > b_seen,
    }
}

/// The project's latest release among `releases` (version, first seen): the release first
/// seen last, or, when it is versioned, the highest version of its package.
pub fn latest(releases: &[(String, i64)]) -> Option<&str> {
    let newest = releases
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)))?;
    let Some((package, _)) = versioned(&newest.0) else {
        return Some(&newest.0);
    };
    releases
        .iter()
        .filter_map(|(r, seen)| {
            let (p, v) = versioned(r)?;
            (p == package).then_some((v, *seen, r.as_str()))
        })
        .max_by(|a, b| match a.0.cmp(&b.0) {
            Ordering::Equal => a.1.cmp(&b.1).then_with(|| a.2.cmp(b.2)),
            other => other,
        })
        .map(|(_, _, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_one_package_follow_their_versions() {
        // First seen earlier, yet later: 2.0.1 after 2.0; a pre-release before its release.
        assert!(later("web@2.0.1", 1, "web@2.0", 5));
        assert!(!later("web@1.9.7", 9, "web@2.0", 5));
        assert!(later("web@2.0", 1, "web@2.0-rc1", 5));
        assert!(later("web@10.0", 1, "web@9.9", 5), "numbers, not text");
        assert!(later("web@2.0+12", 1, "web@2.0+9", 5), "build numbers");
        // The same version, written alike or not, is not later.
        assert!(!later("web@2.0", 9, "web@2.0.0", 5));
    }

    #[test]
    fn other_releases_follow_when_they_were_first_seen() {
        // No package, other packages, commit hashes, words.
        assert!(later("1.0", 9, "2.0", 5));
        assert!(later("api@1.0", 9, "web@2.0", 5));
        assert!(!later("web@2.0", 5, "api@1.0", 9));
        assert!(later("3da5f2a91c0e", 9, "web@2.0", 5));
        assert!(!later("summer-sale", 1, "spring-sale", 5));
    }

    #[test]
    fn the_latest_release_is_the_highest_version_of_the_newest_package() {
        let releases = |list: &[(&str, i64)]| -> Vec<(String, i64)> {
            list.iter().map(|(r, s)| ((*r).to_owned(), *s)).collect()
        };
        // An old version first seen last does not make it the latest.
        let r = releases(&[("web@2.1.0", 1), ("web@1.4.2", 9), ("web@2.0.0", 5)]);
        assert_eq!(latest(&r), Some("web@2.1.0"));
        // Another package's versions do not compete.
        let r = releases(&[("api@9.0", 1), ("web@1.0", 9)]);
        assert_eq!(latest(&r), Some("web@1.0"));
        // Unversioned: the one first seen last.
        let r = releases(&[("blue", 1), ("green", 9), ("web@3.0", 5)]);
        assert_eq!(latest(&r), Some("green"));
        assert_eq!(latest(&[]), None);
    }
}
