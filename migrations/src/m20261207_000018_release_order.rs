//! The releases each project has seen, and when each was first seen: the order Sentry gives
//! releases that do not follow semver ("date added"). A group resolved in the next release is
//! reopened only by an event of a release first seen after the one it was resolved in, so the
//! older deploys still running do not reopen it. Existing releases take the arrival time of
//! their first stored event.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Releases {
    Table,
    ProjectId,
    Version,
    FirstSeen,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    ProjectId,
    Release,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Releases::Table)
                .if_not_exists()
                .col(ColumnDef::new(Releases::ProjectId).uuid().not_null())
                .col(ColumnDef::new(Releases::Version).text().not_null())
                // Unix milliseconds.
                .col(ColumnDef::new(Releases::FirstSeen).big_integer().not_null())
                .primary_key(
                    Index::create()
                        .col(Releases::ProjectId)
                        .col(Releases::Version),
                )
                .to_owned(),
        )
        .await?;
        let backfill = Query::insert()
            .into_table(Releases::Table)
            .columns([Releases::ProjectId, Releases::Version, Releases::FirstSeen])
            .select_from(
                Query::select()
                    .column(Events::ProjectId)
                    .column(Events::Release)
                    .expr(Expr::col(Events::ReceivedAt).min())
                    .from(Events::Table)
                    .and_where(Expr::col(Events::Release).ne(""))
                    .group_by_columns([Events::ProjectId, Events::Release])
                    .to_owned(),
            )
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        m.exec_stmt(backfill).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Releases::Table).to_owned())
            .await
    }
}
