//! Names claimed by projects that ingest created on first use (Log Center's `project_id`):
//! the primary key makes two concurrent first reports for one name end in one project.
//! Project names are not unique in general (`CreateProject` allows duplicates), so the claim
//! lives in its own table instead of a unique index on `projects.name`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ProjectNames {
    Table,
    Name,
    ProjectId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ProjectNames::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(ProjectNames::Name)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(ProjectNames::ProjectId).uuid().not_null())
                .col(
                    ColumnDef::new(ProjectNames::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(ProjectNames::Table)
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
