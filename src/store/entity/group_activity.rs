use sea_orm::entity::prelude::*;

/// One entry of a group's activity: a change of its status, assignee, workflow stage, a merge
/// into it, or Faultline reopening it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_activity")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub group_id: Uuid,
    pub kind: String,
    /// The member whose key acted, if any.
    pub member_id: Option<Uuid>,
    /// As shown; `None` when Faultline itself acted.
    pub actor: Option<String>,
    /// JSON object text: what the kind needs besides.
    pub data: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
