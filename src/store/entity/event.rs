use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub id: Uuid,
    pub project_id: Uuid,
    pub group_id: Uuid,
    pub timestamp: i64,
    pub received_at: i64,
    pub level: String,
    pub message: String,
    pub code: String,
    pub exception_type: String,
    pub culprit: String,
    pub release: String,
    pub environment: String,
    pub user_id: String,
    /// Tags as a JSON object.
    pub tags: String,
    pub idempotency_key: Option<String>,
    /// Lower-cased message, exception type and stack for `search`.
    pub search_text: String,
    /// Exception, grouping and original payload, compressed (`store::blob`).
    pub data: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
