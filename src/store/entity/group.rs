use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "groups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub fingerprint: String,
    pub grouping_version: i32,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub status: String,
    pub regressed: bool,
    pub times_seen: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub resolved_at: Option<i64>,
    pub workflow_stage: String,
    /// When a resolved group last received an event (its newest event's timestamp), in ms.
    pub regressed_at: Option<i64>,
    /// While ignored for a while: when it comes back, in ms.
    pub ignored_until: Option<i64>,
    /// While ignored until more events: the count at which it comes back.
    pub ignored_until_count: Option<i64>,
    /// When it last came back from ignored by itself (its snooze's time was up, or it reached
    /// its count), in ms.
    pub unignored_at: Option<i64>,
    /// The release of its newest event ("" when none said).
    pub last_release: String,
    /// Resolved in the next release: the release it was resolved in, whose events do not reopen
    /// it.
    pub resolved_in_release: Option<String>,
    /// The member it is assigned to.
    pub assignee_id: Option<Uuid>,
    /// The release its first event named (`None`: none); set when it is made.
    pub first_release: Option<String>,
    /// While ignored until more users: the number of users affected at which it comes back.
    pub ignored_until_users: Option<i64>,
    /// While ignored until a rate of events: how many within `ignored_rate_window` minutes.
    pub ignored_rate_count: Option<i64>,
    pub ignored_rate_window: Option<i32>,
    /// While ignored until a rate of users: how many distinct users within
    /// `ignored_user_rate_window` minutes.
    pub ignored_user_rate_count: Option<i64>,
    pub ignored_user_rate_window: Option<i32>,
    /// Archived until escalating: the rate snooze was worked out from its history.
    pub ignored_until_escalating: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
