use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "project_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: Uuid,
    pub rate_limit_ingest: Option<i32>,
    pub rate_limit_analytics: Option<i32>,
    pub rate_limit_general: Option<i32>,
    /// JSON array of strings.
    pub scrub_fields: String,
    /// JSON array of strings.
    pub allowed_origins: String,
    /// `domain::inbound::InboundFilters` as JSON (`{}`: none).
    pub inbound_filters: String,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
