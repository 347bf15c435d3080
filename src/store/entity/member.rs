use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The project the member's key works on by default.
    pub project_id: Uuid,
    pub name: String,
    pub email: String,
    /// `owner`, `admin`, `developer` or `viewer`.
    pub role: String,
    /// `pending` until the invite is accepted, then `active`.
    pub status: String,
    /// SHA-256 of the one-time invite token; cleared when it is used.
    pub invite_token_hash: Option<String>,
    pub invite_expires_at: Option<i64>,
    pub invited_by: String,
    pub created_at: i64,
    pub accepted_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
