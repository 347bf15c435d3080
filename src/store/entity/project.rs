use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub created_at: i64,
    /// The user part of the project's Sentry DSN: 32 lowercase hex digits, ingest only.
    pub public_key: Option<String>,
    /// The project's number in its Sentry DSN path (Sentry SDKs accept only digits there).
    pub sentry_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
