//! Access control: API keys gain a project restriction and a member binding; team members
//! (with pending invites) and the audit log of every change to keys, members and settings.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Restricted,
    MemberId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Members {
    Table,
    Id,
    ProjectId,
    Name,
    Email,
    Role,
    Status,
    InviteTokenHash,
    InviteExpiresAt,
    InvitedBy,
    CreatedAt,
    AcceptedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLog {
    Table,
    Seq,
    Id,
    At,
    ProjectId,
    ActorKeyId,
    ActorMemberId,
    Actor,
    Action,
    Target,
    Details,
    PeerIp,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE. Keys made before this migration were the
        // first-start admin keys: they stay unrestricted.
        if !m.has_column("api_keys", "restricted").await? {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(
                        ColumnDef::new(ApiKeys::Restricted)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        }
        if !m.has_column("api_keys", "member_id").await? {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(ColumnDef::new(ApiKeys::MemberId).uuid().null())
                    .to_owned(),
            )
            .await?;
        }
        // The first-start key was the installation's only credential: it becomes an owner key,
        // since deleting projects and changing owners now need the owner scope.
        m.get_connection()
            .execute_unprepared(
                "UPDATE api_keys SET scopes = 'owner,' || scopes \
                 WHERE scopes LIKE '%admin%' AND scopes NOT LIKE '%owner%'",
            )
            .await?;

        m.create_table(
            Table::create()
                .table(Members::Table)
                .if_not_exists()
                .col(ColumnDef::new(Members::Id).uuid().not_null().primary_key())
                // The project a member's key works on when a request names none.
                .col(ColumnDef::new(Members::ProjectId).uuid().not_null())
                .col(ColumnDef::new(Members::Name).string().not_null())
                // One member per address; concurrent invites of one address cannot both succeed.
                .col(
                    ColumnDef::new(Members::Email)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Members::Role).string().not_null())
                .col(ColumnDef::new(Members::Status).string().not_null())
                .col(
                    ColumnDef::new(Members::InviteTokenHash)
                        .string()
                        .null()
                        .unique_key(),
                )
                .col(
                    ColumnDef::new(Members::InviteExpiresAt)
                        .big_integer()
                        .null(),
                )
                .col(ColumnDef::new(Members::InvitedBy).string().not_null())
                .col(ColumnDef::new(Members::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Members::AcceptedAt).big_integer().null())
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(AuditLog::Seq)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(AuditLog::Id).uuid().not_null().unique_key())
                .col(ColumnDef::new(AuditLog::At).big_integer().not_null())
                // Null for changes that concern the installation (members, unrestricted keys).
                .col(ColumnDef::new(AuditLog::ProjectId).uuid().null())
                .col(ColumnDef::new(AuditLog::ActorKeyId).uuid().null())
                .col(ColumnDef::new(AuditLog::ActorMemberId).uuid().null())
                .col(ColumnDef::new(AuditLog::Actor).string().not_null())
                .col(ColumnDef::new(AuditLog::Action).string().not_null())
                .col(ColumnDef::new(AuditLog::Target).string().not_null())
                .col(ColumnDef::new(AuditLog::Details).text().not_null())
                .col(ColumnDef::new(AuditLog::PeerIp).string().not_null())
                .to_owned(),
        )
        .await?;
        // An installation made before this migration has one first-start key and no team: that
        // key becomes the personal key of an owner member, so the team shows its owner and the
        // last-owner rules hold. The member takes the key's id, which needs no id generator.
        let legacy = "FROM api_keys WHERE member_id IS NULL AND restricted = FALSE \
                      AND revoked_at IS NULL AND scopes LIKE '%owner%'";
        m.get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO members (id, project_id, name, email, role, status, invited_by, \
                 created_at, accepted_at) \
                 SELECT id, project_id, 'admin', '', 'owner', 'active', 'first start', \
                 created_at, created_at {legacy} \
                 AND NOT EXISTS (SELECT 1 FROM members) ORDER BY created_at LIMIT 1"
            ))
            .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE api_keys SET member_id = id WHERE id IN (SELECT id FROM members)",
            )
            .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_log_project_seq")
                .table(AuditLog::Table)
                .col(AuditLog::ProjectId)
                .col(AuditLog::Seq)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditLog::Table).if_exists().to_owned())
            .await?;
        m.drop_table(Table::drop().table(Members::Table).if_exists().to_owned())
            .await?;
        for col in [ApiKeys::MemberId, ApiKeys::Restricted] {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        m.get_connection()
            .execute_unprepared(
                "UPDATE api_keys SET scopes = REPLACE(scopes, 'owner,', '') WHERE scopes LIKE 'owner,%'",
            )
            .await?;
        Ok(())
    }
}
