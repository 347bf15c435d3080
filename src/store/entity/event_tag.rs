use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_tags")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_seq: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub project_id: Uuid,
    pub group_id: Uuid,
    pub value: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
