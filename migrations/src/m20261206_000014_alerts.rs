//! Alert rules and incidents. Both belong to a project and go with it (foreign keys with
//! `ON DELETE CASCADE`); an incident outlives the rule that opened it (`SET NULL`). Groups get
//! `regressed_at`, when a resolved group last received an event (what `regressions` rules
//! count). Rows that deleted projects left in `integrations`, `project_settings` and
//! `group_hashes` are removed.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    RegressedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AlertRules {
    Table,
    Id,
    ProjectId,
    Name,
    Condition,
    Threshold,
    WindowSecs,
    Enabled,
    Notifications,
    Severity,
    LastTriggered,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Incidents {
    Table,
    Id,
    ProjectId,
    RuleId,
    Title,
    Severity,
    Status,
    Description,
    AssignedTo,
    CreatedAt,
    UpdatedAt,
    ResolvedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Deleting a project left its integrations (with their credentials), its policy and
        // its group keys behind until now; rows of projects that are gone are removed.
        for table in ["integrations", "project_settings", "group_hashes"] {
            m.get_connection()
                .execute_unprepared(&format!(
                    "DELETE FROM {table} WHERE project_id NOT IN (SELECT id FROM projects)"
                ))
                .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(ColumnDef::new(Groups::RegressedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AlertRules::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(AlertRules::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(AlertRules::ProjectId).uuid().not_null())
                .col(ColumnDef::new(AlertRules::Name).string().not_null())
                // As the caller wrote it: what it counts is read from it when the rule is
                // loaded; `threshold` and `window_secs` are what it means with the fields.
                .col(ColumnDef::new(AlertRules::Condition).text().not_null())
                .col(
                    ColumnDef::new(AlertRules::Threshold)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AlertRules::WindowSecs)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(AlertRules::Enabled).boolean().not_null())
                // JSON array of channel names.
                .col(ColumnDef::new(AlertRules::Notifications).text().not_null())
                .col(ColumnDef::new(AlertRules::Severity).string().not_null())
                // Milliseconds; also the token instances compare-and-set to fire once.
                .col(
                    ColumnDef::new(AlertRules::LastTriggered)
                        .big_integer()
                        .null(),
                )
                .col(
                    ColumnDef::new(AlertRules::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AlertRules::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(AlertRules::Table, AlertRules::ProjectId)
                        .to(Projects::Table, Projects::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_alert_rules_project")
                .table(AlertRules::Table)
                .col(AlertRules::ProjectId)
                .col(AlertRules::CreatedAt)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Incidents::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Incidents::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Incidents::ProjectId).uuid().not_null())
                .col(ColumnDef::new(Incidents::RuleId).uuid().null())
                .col(ColumnDef::new(Incidents::Title).string().not_null())
                .col(ColumnDef::new(Incidents::Severity).string().not_null())
                .col(ColumnDef::new(Incidents::Status).string().not_null())
                .col(ColumnDef::new(Incidents::Description).text().not_null())
                .col(ColumnDef::new(Incidents::AssignedTo).string().not_null())
                .col(
                    ColumnDef::new(Incidents::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Incidents::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(Incidents::ResolvedAt).big_integer().null())
                .foreign_key(
                    ForeignKey::create()
                        .from(Incidents::Table, Incidents::ProjectId)
                        .to(Projects::Table, Projects::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Incidents::Table, Incidents::RuleId)
                        .to(AlertRules::Table, AlertRules::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_incidents_project")
                .table(Incidents::Table)
                .col(Incidents::ProjectId)
                .col(Incidents::CreatedAt)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_incidents_rule")
                .table(Incidents::Table)
                .col(Incidents::RuleId)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Incidents::Table).if_exists().to_owned())
            .await?;
        m.drop_table(
            Table::drop()
                .table(AlertRules::Table)
                .if_exists()
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .drop_column(Groups::RegressedAt)
                .to_owned(),
        )
        .await
    }
}
