use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub id: Uuid,
    pub at: i64,
    pub project_id: Option<Uuid>,
    pub actor_key_id: Option<Uuid>,
    pub actor_member_id: Option<Uuid>,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// JSON object text.
    pub details: String,
    pub peer_ip: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
