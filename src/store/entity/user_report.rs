use sea_orm::entity::prelude::*;

/// What a user wrote about an error (Sentry's user feedback).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_reports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    /// The event it is about, as named.
    pub event_id: Option<Uuid>,
    /// `sentry:<hex>` of `event_id` (the form events keep a Sentry id in); "" for none.
    pub event_key: String,
    pub name: String,
    pub email: String,
    pub comments: String,
    pub url: String,
    /// Reports with the same key are one (the later replaces the earlier); `None`: none.
    pub dedup_key: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
