use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub condition: String,
    pub threshold: i64,
    pub window_secs: i64,
    pub enabled: bool,
    /// JSON array of channel names.
    pub notifications: String,
    pub severity: String,
    pub last_triggered: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Only events of this environment count (NULL: any).
    pub environment: Option<String>,
    /// Only events of at least this level count (NULL: any).
    pub level: Option<String>,
    /// Only events with these tags count: a JSON object of key → value (`{}`: any).
    pub tags: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
