//! Sentry SDK compatibility: each project gets a public key (the user part of its DSN, good
//! for ingest only) and a small integer id (the DSN's path: Sentry SDKs accept only digits
//! there). Existing projects get both here; new projects get them when they are created.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    PublicKey,
    SentryId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one change per ALTER TABLE; nullable so existing rows stay valid until
        // they are filled below.
        m.alter_table(
            Table::alter()
                .table(Projects::Table)
                .add_column(ColumnDef::new(Projects::PublicKey).string_len(32).null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Projects::Table)
                .add_column(ColumnDef::new(Projects::SentryId).big_integer().null())
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        // 128 random bits as 32 lowercase hex digits, computed by the database itself.
        let random_hex = match m.get_database_backend() {
            DatabaseBackend::Postgres => {
                "md5(random()::text || clock_timestamp()::text || id::text)"
            }
            _ => "lower(hex(randomblob(16)))",
        };
        db.execute_unprepared(&format!(
            "UPDATE projects SET public_key = {random_hex} WHERE public_key IS NULL"
        ))
        .await?;
        // Numbered 1, 2, … in creation order, so the default project is 1.
        db.execute_unprepared(
            "UPDATE projects SET sentry_id = (SELECT COUNT(*) FROM projects p2 \
             WHERE p2.created_at < projects.created_at \
             OR (p2.created_at = projects.created_at AND p2.id <= projects.id)) \
             WHERE sentry_id IS NULL",
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_projects_public_key")
                .table(Projects::Table)
                .col(Projects::PublicKey)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_projects_sentry_id")
                .table(Projects::Table)
                .col(Projects::SentryId)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await
    }
}
