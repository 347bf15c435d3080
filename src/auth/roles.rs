//! Team roles and the one mapping from a role to the scopes of its members' keys. A member's
//! key carries exactly these scopes; changing the role rewrites them (see `store::members`).

use super::Scope;

/// A member's role, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including deleting projects and changing who the owners are.
    Owner,
    /// Also manages keys, the team, integrations and settings.
    Admin,
    /// Also resolves and ignores groups and manages alert rules.
    Developer,
    /// Reads errors, groups and analytics.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Developer, Role::Viewer];

    /// The scopes a member with this role holds.
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            Role::Owner => &[
                Scope::Owner,
                Scope::Admin,
                Scope::Write,
                Scope::Read,
                Scope::Ingest,
            ],
            Role::Admin => &[Scope::Admin, Scope::Write, Scope::Read, Scope::Ingest],
            Role::Developer => &[Scope::Write, Scope::Read],
            Role::Viewer => &[Scope::Read],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Scopes as stored: comma-separated names.
pub fn scopes_csv(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest() {
        // Each role can do everything the role below it can.
        for pair in Role::ALL.windows(2) {
            for s in pair[1].scopes() {
                assert!(pair[0].scopes().contains(s), "{:?} lacks {s:?}", pair[0]);
            }
        }
        assert_eq!(Role::parse("developer"), Some(Role::Developer));
        assert_eq!(Role::parse("root"), None);
    }
}
