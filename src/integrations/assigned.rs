//! Tells a member by email of the issues just assigned to them, as Sentry's workflow
//! notifications do. The message goes through the project's email channel (its SMTP server and
//! sender) to the member's own address, not to the channel's recipients. Nothing is sent when
//! the member assigned the issues themself, has no address or has not joined yet, or when the
//! project has no email channel.

use std::{fmt::Write, time::Duration};

use chrono::SecondsFormat;
use uuid::Uuid;

use super::{Config, Kind, send};
use crate::{
    domain::model::Group,
    error::Error,
    store::{Actor, Store},
};

/// Issues one message names; the rest are counted.
const NAMED_MAX: usize = 20;
/// Characters of a title in a subject line.
const SUBJECT_TITLE_MAX: usize = 120;

/// What became of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent to this address.
    Sent(String),
    /// Not sent, and why that is as it should be.
    Skipped(&'static str),
}

/// Tells the member `groups` are now assigned to (all to the same one, by `by`) in the
/// background; the caller's answer does not wait for the SMTP server. Failures are logged.
pub fn spawn(store: Store, project_id: Uuid, by: Actor, groups: Vec<Group>) {
    tokio::spawn(async move {
        match notify(&store, project_id, &by, &groups, &send::RETRY_DELAYS).await {
            Ok(Outcome::Sent(to)) => {
                tracing::info!(%project_id, issues = groups.len(), %to, "assignment emailed")
            }
            Ok(Outcome::Skipped(why)) => {
                tracing::debug!(%project_id, why, "assignment not emailed")
            }
            Err(why) => tracing::warn!(%project_id, %why, "assignment email failed"),
        }
    });
}

/// Emails the assignee of `groups` (all assigned to one member by `by`), retrying after each
/// of `delays` while a failure may pass.
pub async fn notify(
    store: &Store,
    project_id: Uuid,
    by: &Actor,
    groups: &[Group],
    delays: &[Duration],
) -> Result<Outcome, String> {
    let Some(assignee) = groups.first().and_then(|g| g.assignee.as_ref()) else {
        return Ok(Outcome::Skipped("unassigned"));
    };
    if by.member_id == Some(assignee.id) {
        return Ok(Outcome::Skipped("assigned by themself"));
    }
    let internal = |e: Error| e.to_string();
    let Some(to) = store.member_address(assignee.id).await.map_err(internal)? else {
        return Ok(Outcome::Skipped("no address, or not joined"));
    };
    let mut channel = match store.get_integration(project_id, Kind::Email).await {
        Ok(i) => match i.config {
            Config::Email(c) => c,
            _ => return Ok(Outcome::Skipped("no email channel")),
        },
        Err(Error::NotFound { .. }) => return Ok(Outcome::Skipped("no email channel")),
        Err(e) => return Err(internal(e)),
    };
    channel.to = vec![to.clone()];
    let by_name = store.actor_name(by).await.map_err(internal)?;
    let project = store.get_project(project_id).await.map_err(internal)?.name;
    let (subject, text) = message(&by_name, &project, groups);
    let notice = send::Notice {
        event: "assigned",
        subject: &subject,
        text: &text,
        data: None,
    };
    send::deliver_retrying(&Config::Email(channel), &notice, delays).await?;
    Ok(Outcome::Sent(to))
}

/// The subject and text telling of `groups` assigned by `by` in `project`.
fn message(by: &str, project: &str, groups: &[Group]) -> (String, String) {
    let subject = match groups {
        [one] => {
            let mut title: String = one.title.chars().take(SUBJECT_TITLE_MAX).collect();
            if title.len() < one.title.len() {
                title.push('…');
            }
            format!("[Faultline] Assigned to you: {title}")
        }
        many => format!("[Faultline] {} issues assigned to you", many.len()),
    };
    let mut text = match groups.len() {
        1 => format!("{by} assigned you an issue in {project}:\n"),
        n => format!("{by} assigned you {n} issues in {project}:\n"),
    };
    for g in groups.iter().take(NAMED_MAX) {
        let _ = write!(
            text,
            "\n- {}\n  {}{} event{}, {}, last seen {}\n  issue {}\n",
            g.title,
            if g.culprit.is_empty() {
                String::new()
            } else {
                format!("in {}: ", g.culprit)
            },
            g.count,
            if g.count == 1 { "" } else { "s" },
            g.status.as_str(),
            g.last_seen.to_rfc3339_opts(SecondsFormat::Secs, true),
            g.id,
        );
    }
    if groups.len() > NAMED_MAX {
        let _ = write!(text, "\nand {} more.\n", groups.len() - NAMED_MAX);
    }
    (subject, text)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{GroupStatus, Level, model::Assignee, workflow::WorkflowStage};

    fn group(title: &str, count: u64) -> Group {
        let now = Utc::now();
        Group {
            id: Uuid::now_v7(),
            project_id: Uuid::nil(),
            fingerprint: String::new(),
            grouping_version: 2,
            title: title.to_owned(),
            culprit: "cart.total".to_owned(),
            level: Level::Error,
            status: GroupStatus::Unresolved,
            regressed: false,
            count,
            first_seen: now,
            last_seen: now,
            workflow_stage: WorkflowStage::ALL[0],
            ignored_until: None,
            ignored_until_count: None,
            ignored_until_user_count: None,
            ignored_until_rate: None,
            ignored_until_user_rate: None,
            ignored_until_escalating: false,
            last_release: String::new(),
            resolved_in_release: None,
            first_release: None,
            assignee: Some(Assignee {
                id: Uuid::nil(),
                name: "Ana".into(),
                email: "ana@example.com".into(),
            }),
        }
    }

    #[test]
    fn one_issue_is_named_in_the_subject_many_are_counted() {
        let one = group(&"x".repeat(200), 1);
        let (subject, text) = message("Bo", "shop", std::slice::from_ref(&one));
        assert_eq!(
            subject,
            format!("[Faultline] Assigned to you: {}…", "x".repeat(120))
        );
        assert!(
            text.starts_with("Bo assigned you an issue in shop:\n"),
            "{text}"
        );
        assert!(
            text.contains("in cart.total: 1 event, unresolved"),
            "{text}"
        );
        assert!(text.contains(&format!("issue {}", one.id)), "{text}");

        let many: Vec<Group> = (0..23).map(|i| group(&format!("E{i}"), 5)).collect();
        let (subject, text) = message("Bo", "shop", &many);
        assert_eq!(subject, "[Faultline] 23 issues assigned to you");
        assert!(
            text.contains("- E19\n") && !text.contains("- E20\n"),
            "{text}"
        );
        assert!(
            text.contains("5 events") && text.ends_with("and 3 more.\n"),
            "{text}"
        );
    }
}
