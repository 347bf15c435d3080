use sea_orm::entity::prelude::*;

/// A comment on a group (an issue).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_comments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub group_id: Uuid,
    /// The member whose key wrote it, if any.
    pub member_id: Option<Uuid>,
    /// The key that wrote it.
    pub key_id: Uuid,
    /// As shown: the member's name (or email), else the key's name.
    pub author: String,
    pub text: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// When its author last edited it, in Unix milliseconds.
    pub edited_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
