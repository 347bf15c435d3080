//! Projects, API keys, groups, events (with their tags and hourly counts) and retention.
//! Times are integer milliseconds since the Unix epoch: they compare and bucket the same
//! way on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    ProjectId,
    Name,
    KeyHash,
    KeyPreview,
    Scopes,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    Id,
    ProjectId,
    Fingerprint,
    GroupingVersion,
    Title,
    Culprit,
    Level,
    Status,
    Regressed,
    TimesSeen,
    FirstSeen,
    LastSeen,
    ResolvedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    Seq,
    Id,
    ProjectId,
    GroupId,
    Timestamp,
    ReceivedAt,
    Level,
    Message,
    Code,
    ExceptionType,
    Culprit,
    Release,
    Environment,
    UserId,
    Tags,
    IdempotencyKey,
    SearchText,
    Data,
}

#[derive(DeriveIden, Clone, Copy)]
enum EventTags {
    Table,
    EventSeq,
    ProjectId,
    GroupId,
    Key,
    Value,
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupHourly {
    Table,
    GroupId,
    Hour,
    Count,
}

#[derive(DeriveIden, Clone, Copy)]
enum Retention {
    Table,
    ProjectId,
    Days,
    AutoExport,
    ExportDestination,
    UpdatedAt,
    LastCleanupAt,
    LastCleanupDeleted,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Projects::Table)
                .if_not_exists()
                .col(ColumnDef::new(Projects::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Projects::Name).string().not_null())
                .col(ColumnDef::new(Projects::CreatedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .if_not_exists()
                .col(ColumnDef::new(ApiKeys::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(ApiKeys::ProjectId).uuid().not_null())
                .col(ColumnDef::new(ApiKeys::Name).string().not_null())
                .col(
                    ColumnDef::new(ApiKeys::KeyHash)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(ApiKeys::KeyPreview).string().not_null())
                .col(ColumnDef::new(ApiKeys::Scopes).string().not_null())
                .col(ColumnDef::new(ApiKeys::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(ApiKeys::ExpiresAt).big_integer().null())
                .col(ColumnDef::new(ApiKeys::RevokedAt).big_integer().null())
                .col(ColumnDef::new(ApiKeys::LastUsedAt).big_integer().null())
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiKeys::Table, ApiKeys::ProjectId)
                        .to(Projects::Table, Projects::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Groups::Table)
                .if_not_exists()
                .col(ColumnDef::new(Groups::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Groups::ProjectId).uuid().not_null())
                .col(ColumnDef::new(Groups::Fingerprint).string().not_null())
                .col(ColumnDef::new(Groups::GroupingVersion).integer().not_null())
                .col(ColumnDef::new(Groups::Title).string().not_null())
                .col(ColumnDef::new(Groups::Culprit).string().not_null())
                .col(ColumnDef::new(Groups::Level).string().not_null())
                .col(ColumnDef::new(Groups::Status).string().not_null())
                .col(ColumnDef::new(Groups::Regressed).boolean().not_null())
                .col(ColumnDef::new(Groups::TimesSeen).big_integer().not_null())
                .col(ColumnDef::new(Groups::FirstSeen).big_integer().not_null())
                .col(ColumnDef::new(Groups::LastSeen).big_integer().not_null())
                .col(ColumnDef::new(Groups::ResolvedAt).big_integer().null())
                .foreign_key(
                    ForeignKey::create()
                        .from(Groups::Table, Groups::ProjectId)
                        .to(Projects::Table, Projects::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ux_groups_project_fingerprint",
            Groups::Table,
            &[Groups::ProjectId, Groups::Fingerprint],
            true,
        )
        .await?;
        index(
            m,
            "ix_groups_project_last_seen",
            Groups::Table,
            &[Groups::ProjectId, Groups::LastSeen, Groups::Id],
            false,
        )
        .await?;
        index(
            m,
            "ix_groups_project_first_seen",
            Groups::Table,
            &[Groups::ProjectId, Groups::FirstSeen, Groups::Id],
            false,
        )
        .await?;
        index(
            m,
            "ix_groups_project_count",
            Groups::Table,
            &[Groups::ProjectId, Groups::TimesSeen, Groups::Id],
            false,
        )
        .await?;
        index(
            m,
            "ix_groups_project_status",
            Groups::Table,
            &[Groups::ProjectId, Groups::Status, Groups::LastSeen],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Events::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Events::Seq)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(Events::Id).uuid().not_null().unique_key())
                .col(ColumnDef::new(Events::ProjectId).uuid().not_null())
                .col(ColumnDef::new(Events::GroupId).uuid().not_null())
                .col(ColumnDef::new(Events::Timestamp).big_integer().not_null())
                .col(ColumnDef::new(Events::ReceivedAt).big_integer().not_null())
                .col(ColumnDef::new(Events::Level).string().not_null())
                .col(ColumnDef::new(Events::Message).text().not_null())
                .col(ColumnDef::new(Events::Code).string().not_null())
                .col(ColumnDef::new(Events::ExceptionType).string().not_null())
                .col(ColumnDef::new(Events::Culprit).string().not_null())
                .col(ColumnDef::new(Events::Release).string().not_null())
                .col(ColumnDef::new(Events::Environment).string().not_null())
                .col(ColumnDef::new(Events::UserId).string().not_null())
                .col(ColumnDef::new(Events::Tags).text().not_null())
                .col(ColumnDef::new(Events::IdempotencyKey).string().null())
                .col(ColumnDef::new(Events::SearchText).text().not_null())
                // zstd-compressed exception, grouping and original payload (see store::blob);
                // last, so listings that skip it never touch its overflow pages.
                .col(ColumnDef::new(Events::Data).blob().not_null())
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_events_project_seq",
            Events::Table,
            &[Events::ProjectId, Events::Seq],
            false,
        )
        .await?;
        index(
            m,
            "ix_events_group_seq",
            Events::Table,
            &[Events::GroupId, Events::Seq],
            false,
        )
        .await?;
        index(
            m,
            "ix_events_project_timestamp",
            Events::Table,
            &[Events::ProjectId, Events::Timestamp],
            false,
        )
        .await?;
        // Partial: only events that carry a key pay for this index. Same SQL on both databases.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS ux_events_project_idempotency \
                 ON events (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
            )
            .await?;

        m.create_table(
            Table::create()
                .table(EventTags::Table)
                .if_not_exists()
                .col(ColumnDef::new(EventTags::EventSeq).big_integer().not_null())
                .col(ColumnDef::new(EventTags::ProjectId).uuid().not_null())
                .col(ColumnDef::new(EventTags::GroupId).uuid().not_null())
                .col(ColumnDef::new(EventTags::Key).string().not_null())
                .col(ColumnDef::new(EventTags::Value).string().not_null())
                .primary_key(Index::create().col(EventTags::EventSeq).col(EventTags::Key))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_event_tags_lookup",
            EventTags::Table,
            &[
                EventTags::ProjectId,
                EventTags::Key,
                EventTags::Value,
                EventTags::EventSeq,
            ],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table(GroupHourly::Table)
                .if_not_exists()
                .col(ColumnDef::new(GroupHourly::GroupId).uuid().not_null())
                .col(ColumnDef::new(GroupHourly::Hour).big_integer().not_null())
                .col(ColumnDef::new(GroupHourly::Count).big_integer().not_null())
                .primary_key(
                    Index::create()
                        .col(GroupHourly::GroupId)
                        .col(GroupHourly::Hour),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Retention::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Retention::ProjectId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Retention::Days).integer().not_null())
                .col(ColumnDef::new(Retention::AutoExport).boolean().not_null())
                .col(
                    ColumnDef::new(Retention::ExportDestination)
                        .string()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Retention::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Retention::LastCleanupAt)
                        .big_integer()
                        .null(),
                )
                .col(
                    ColumnDef::new(Retention::LastCleanupDeleted)
                        .big_integer()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Retention::Table, Retention::ProjectId)
                        .to(Projects::Table, Projects::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}

async fn index<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table).if_not_exists();
    for c in cols {
        stmt.col(*c);
    }
    if unique {
        stmt.unique();
    }
    m.create_index(stmt.to_owned()).await
}
