//! API keys, team members and the audit log. Every change here writes its audit entry in the
//! same transaction, so a change is never stored without its record.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Store, db_err,
    entity::{api_key, audit, group, member, project},
};
use crate::error::Error;

/// An API key as it may be shown (no hash, no secret).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: Uuid,
    pub project_id: Uuid,
    pub restricted: bool,
    pub name: String,
    pub preview: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub member_id: Option<Uuid>,
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub project_id: Uuid,
    pub restricted: bool,
    pub name: String,
    pub key_hash: String,
    pub preview: String,
    /// Comma-separated scope names.
    pub scopes: String,
    pub expires_at: Option<i64>,
}

/// A team member.
#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub last_active: Option<i64>,
    pub created_at: i64,
}

/// An invitation to store.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub project_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
    pub token_hash: String,
    pub expires_at: i64,
}

/// One audit entry to write. Built by the handler from the caller and the request.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub actor_key_id: Option<Uuid>,
    pub actor_member_id: Option<Uuid>,
    pub actor: String,
    pub peer_ip: String,
    pub action: String,
    pub target: String,
    pub project_id: Option<Uuid>,
    pub details: serde_json::Value,
}

impl NewAudit {
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }

    pub fn for_project(mut self, id: Uuid) -> Self {
        self.project_id = Some(id);
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored audit entry.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub seq: i64,
    pub id: Uuid,
    pub at: i64,
    pub project_id: Option<Uuid>,
    pub actor_key_id: Option<Uuid>,
    pub actor_member_id: Option<Uuid>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub peer_ip: String,
}

pub(super) async fn insert_audit(db: &impl ConnectionTrait, a: NewAudit) -> Result<(), Error> {
    let NewAudit {
        actor_key_id,
        actor_member_id,
        actor,
        peer_ip,
        action,
        target,
        project_id,
        details,
    } = a;
    audit::ActiveModel {
        id: Set(Uuid::now_v7()),
        at: Set(Utc::now().timestamp_millis()),
        project_id: Set(project_id),
        actor_key_id: Set(actor_key_id),
        actor_member_id: Set(actor_member_id),
        actor: Set(actor),
        action: Set(action),
        target: Set(target),
        details: Set(details.to_string()),
        peer_ip: Set(peer_ip),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    Ok(())
}

fn key_info(m: api_key::Model) -> KeyInfo {
    KeyInfo {
        id: m.id,
        project_id: m.project_id,
        restricted: m.restricted,
        name: m.name,
        preview: m.key_preview,
        scopes: super::convert::scopes(&m.scopes),
        expires_at: m.expires_at,
        last_used_at: m.last_used_at,
        created_at: m.created_at,
        member_id: m.member_id,
    }
}

fn member_info(m: member::Model, last_active: Option<i64>) -> MemberInfo {
    MemberInfo {
        id: m.id,
        name: m.name,
        email: m.email,
        role: m.role,
        status: m.status,
        last_active,
        created_at: m.created_at,
    }
}

/// Keys that are neither revoked nor expired.
fn live_keys(now: i64) -> Condition {
    Condition::all()
        .add(api_key::Column::RevokedAt.is_null())
        .add(
            Condition::any()
                .add(api_key::Column::ExpiresAt.is_null())
                .add(api_key::Column::ExpiresAt.gt(now)),
        )
}

async fn insert_key(
    txn: &DatabaseTransaction,
    k: NewKey,
    member_id: Option<Uuid>,
    now: i64,
) -> Result<api_key::Model, Error> {
    let NewKey {
        project_id,
        restricted,
        name,
        key_hash,
        preview,
        scopes,
        expires_at,
    } = k;
    api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        project_id: Set(project_id),
        name: Set(name),
        key_hash: Set(key_hash),
        key_preview: Set(preview),
        scopes: Set(scopes),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        last_used_at: Set(None),
        restricted: Set(restricted),
        member_id: Set(member_id),
    }
    .insert(txn)
    .await
    .map_err(db_err)
}

/// Fails with a conflict when no live owner key that reaches every project would remain
/// besides `except`.
async fn keep_an_owner_key(
    txn: &DatabaseTransaction,
    except: &[Uuid],
    now: i64,
) -> Result<(), Error> {
    // All of them, locked (PostgreSQL; SQLite's write transaction is exclusive already), so two
    // concurrent revocations cannot each count on the other's key.
    let owner_keys = api_key::Entity::find()
        .filter(live_keys(now))
        .filter(api_key::Column::Scopes.contains("owner"))
        .filter(api_key::Column::Restricted.eq(false))
        .lock_exclusive()
        .all(txn)
        .await
        .map_err(db_err)?;
    if owner_keys.iter().all(|k| except.contains(&k.id)) {
        return Err(Error::Conflict(
            "at least one owner must remain: this is the last working owner key".into(),
        ));
    }
    Ok(())
}

impl Store {
    /// Stores a new key. A restricted key's project must exist.
    pub async fn create_key(&self, k: NewKey, audit: NewAudit) -> Result<KeyInfo, Error> {
        let txn = self.begin_write().await?;
        if project::Entity::find_by_id(k.project_id)
            .one(&txn)
            .await
            .map_err(db_err)?
            .is_none()
        {
            return Err(Error::NotFound { what: "project" });
        }
        let now = Utc::now().timestamp_millis();
        let restricted = k.restricted.then_some(k.project_id);
        let details = serde_json::json!({"name": k.name, "permissions": k.scopes.split(',').collect::<Vec<_>>(),
            "expires_at": k.expires_at, "project_id": restricted});
        let m = insert_key(&txn, k, None, now).await?;
        let mut audit = audit.target(format!("api_key:{}", m.id)).details(details);
        audit.project_id = restricted;
        insert_audit(&txn, audit).await?;
        txn.commit().await.map_err(db_err)?;
        Ok(key_info(m))
    }

    /// Keys that are not revoked, newest first; only those restricted to `project` when given.
    pub async fn list_keys(&self, project: Option<Uuid>) -> Result<Vec<KeyInfo>, Error> {
        let mut q = api_key::Entity::find()
            .filter(api_key::Column::RevokedAt.is_null())
            .order_by_desc(api_key::Column::CreatedAt);
        if let Some(p) = project {
            q = q
                .filter(api_key::Column::Restricted.eq(true))
                .filter(api_key::Column::ProjectId.eq(p));
        }
        Ok(q.all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(key_info)
            .collect())
    }

    /// Revokes a key (only one restricted to `project` when given). Only an owner (`by_owner`)
    /// revokes an owner key, and the last working one is kept, so the installation can always
    /// be administered.
    pub async fn revoke_key(
        &self,
        id: Uuid,
        project: Option<Uuid>,
        by_owner: bool,
        audit: NewAudit,
    ) -> Result<(), Error> {
        let txn = self.begin_write().await?;
        let key = api_key::Entity::find_by_id(id)
            .filter(api_key::Column::RevokedAt.is_null())
            .one(&txn)
            .await
            .map_err(db_err)?
            .filter(|k| project.is_none_or(|p| k.restricted && k.project_id == p))
            .ok_or(Error::NotFound { what: "API key" })?;
        let now = Utc::now().timestamp_millis();
        if key.scopes.split(',').any(|s| s == "owner") {
            if !by_owner {
                return Err(Error::PermissionDenied(
                    "only an owner revokes an owner's key".into(),
                ));
            }
            keep_an_owner_key(&txn, &[id], now).await?;
        }
        let restricted = key.restricted.then_some(key.project_id);
        let details = serde_json::json!({"name": key.name, "key_preview": key.key_preview});
        let mut am: api_key::ActiveModel = key.into();
        am.revoked_at = Set(Some(now));
        am.update(&txn).await.map_err(db_err)?;
        let mut audit = audit.target(format!("api_key:{id}")).details(details);
        audit.project_id = restricted;
        insert_audit(&txn, audit).await?;
        txn.commit().await.map_err(db_err)
    }

    /// Members, oldest first, with when their keys were last used.
    pub async fn list_members(&self) -> Result<Vec<MemberInfo>, Error> {
        let members = member::Entity::find()
            .order_by_asc(member::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let used: Vec<(Option<Uuid>, Option<i64>)> = api_key::Entity::find()
            .select_only()
            .column(api_key::Column::MemberId)
            .column(api_key::Column::LastUsedAt)
            .filter(api_key::Column::MemberId.is_not_null())
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(members
            .into_iter()
            .map(|m| {
                let last = used
                    .iter()
                    .filter(|(id, _)| *id == Some(m.id))
                    .filter_map(|(_, at)| *at)
                    .max();
                member_info(m, last)
            })
            .collect())
    }

    async fn member(&self, txn: &DatabaseTransaction, id: Uuid) -> Result<member::Model, Error> {
        member::Entity::find_by_id(id)
            .one(txn)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound { what: "member" })
    }

    /// Creates a pending member. One member per email address.
    pub async fn invite_member(&self, i: NewInvite, audit: NewAudit) -> Result<MemberInfo, Error> {
        let txn = self.begin_write().await?;
        let taken = member::Entity::find()
            .filter(member::Column::Email.eq(i.email.clone()))
            .one(&txn)
            .await
            .map_err(db_err)?;
        if taken.is_some() {
            return Err(Error::Conflict(format!(
                "{} is already a member or invited",
                i.email
            )));
        }
        let now = Utc::now().timestamp_millis();
        let id = Uuid::now_v7();
        let details = serde_json::json!({"email": i.email, "role": i.role});
        let m = member::ActiveModel {
            id: Set(id),
            project_id: Set(i.project_id),
            name: Set(i.name),
            email: Set(i.email),
            role: Set(i.role),
            status: Set("pending".into()),
            invite_token_hash: Set(Some(i.token_hash)),
            invite_expires_at: Set(Some(i.expires_at)),
            invited_by: Set(audit.actor.clone()),
            created_at: Set(now),
            accepted_at: Set(None),
        }
        .insert(&txn)
        .await
        // A concurrent invite of the same address may have won since the check above.
        .map_err(|e| match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                Error::Conflict("this address is already a member or invited".into())
            }
            _ => db_err(e),
        })?;
        insert_audit(&txn, audit.target(format!("member:{id}")).details(details)).await?;
        txn.commit().await.map_err(db_err)?;
        Ok(member_info(m, None))
    }

    /// Turns a pending member into an active one and stores their personal key. `scopes_of`
    /// maps the member's role to the key's scopes; the key reaches every project.
    pub async fn accept_invite(
        &self,
        token_hash: &str,
        name: &str,
        key: NewKey,
        scopes_of: impl Fn(&str) -> Option<String>,
        peer_ip: String,
    ) -> Result<(MemberInfo, KeyInfo), Error> {
        let txn = self.begin_write().await?;
        let now = Utc::now().timestamp_millis();
        let invalid =
            || Error::Unauthenticated("the invite token is invalid, used or expired".into());
        let m = member::Entity::find()
            .filter(member::Column::InviteTokenHash.eq(token_hash))
            .filter(member::Column::Status.eq("pending"))
            .one(&txn)
            .await
            .map_err(db_err)?
            .filter(|m| {
                m.invite_token_hash
                    .as_deref()
                    .is_some_and(|h| crate::auth::keys::hash_matches(h, token_hash))
            })
            .filter(|m| m.invite_expires_at.is_some_and(|t| t > now))
            .ok_or_else(invalid)?;
        let scopes = scopes_of(&m.role)
            .ok_or_else(|| Error::Internal(format!("unknown role {}", m.role)))?;
        let member_id = m.id;
        let project_id = m.project_id;
        let mut am: member::ActiveModel = m.into();
        am.status = Set("active".into());
        am.invite_token_hash = Set(None);
        am.invite_expires_at = Set(None);
        am.accepted_at = Set(Some(now));
        if !name.is_empty() {
            am.name = Set(name.to_owned());
        }
        let m = am.update(&txn).await.map_err(db_err)?;
        let k = insert_key(
            &txn,
            NewKey {
                project_id,
                restricted: false,
                name: format!("{} (personal)", m.email),
                scopes,
                ..key
            },
            Some(member_id),
            now,
        )
        .await?;
        insert_audit(
            &txn,
            NewAudit {
                actor_key_id: Some(k.id),
                actor_member_id: Some(member_id),
                actor: m.email.clone(),
                peer_ip,
                action: "member.accept".into(),
                target: format!("member:{member_id}"),
                project_id: None,
                details: serde_json::json!({"role": m.role, "api_key_id": k.id}),
            },
        )
        .await?;
        txn.commit().await.map_err(db_err)?;
        Ok((member_info(m, None), key_info(k)))
    }

    /// Changes a member's role and the scopes of their keys. Only an owner (`by_owner`) makes
    /// or unmakes owners, and the last active owner keeps the role.
    pub async fn update_member_role(
        &self,
        id: Uuid,
        role: &str,
        scopes: &str,
        by_owner: bool,
        audit: NewAudit,
    ) -> Result<MemberInfo, Error> {
        let txn = self.begin_write().await?;
        let m = self.member(&txn, id).await?;
        let from = m.role.clone();
        if (from == "owner" || role == "owner") && !by_owner {
            return Err(Error::PermissionDenied(
                "only an owner makes or changes owners".into(),
            ));
        }
        if from == "owner" && role != "owner" {
            self.keep_an_owner(&txn, id).await?;
        }
        let mut am: member::ActiveModel = m.into();
        am.role = Set(role.to_owned());
        let m = am.update(&txn).await.map_err(db_err)?;
        api_key::Entity::update_many()
            .col_expr(api_key::Column::Scopes, Expr::value(scopes))
            .filter(api_key::Column::MemberId.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        insert_audit(
            &txn,
            audit
                .target(format!("member:{id}"))
                .details(serde_json::json!({"email": m.email, "from": from, "to": role})),
        )
        .await?;
        txn.commit().await.map_err(db_err)?;
        let last = self
            .list_members()
            .await?
            .into_iter()
            .find(|x| x.id == id)
            .and_then(|x| x.last_active);
        Ok(member_info(m, last))
    }

    /// Removes a member and revokes their keys, with the same owner rules as a role change.
    pub async fn remove_member(
        &self,
        id: Uuid,
        by_owner: bool,
        audit: NewAudit,
    ) -> Result<(), Error> {
        let txn = self.begin_write().await?;
        let m = self.member(&txn, id).await?;
        if m.role == "owner" {
            if !by_owner {
                return Err(Error::PermissionDenied(
                    "only an owner removes an owner".into(),
                ));
            }
            self.keep_an_owner(&txn, id).await?;
        }
        let now = Utc::now().timestamp_millis();
        api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(now))
            .filter(api_key::Column::MemberId.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await
            .map_err(db_err)?;
        // Their issues become unassigned (locked first in the ingest writer's order).
        let assigned =
            super::groups::lock_for_update(&txn, group::Column::AssigneeId.eq(id)).await?;
        if !assigned.is_empty() {
            group::Entity::update_many()
                .col_expr(group::Column::AssigneeId, Expr::value(Option::<Uuid>::None))
                .filter(group::Column::Id.is_in(assigned.iter().map(|&(_, id)| id)))
                .filter(group::Column::AssigneeId.eq(id))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            // In each issue's activity, by whoever removed the member.
            let by = super::activity::Actor {
                member_id: audit.actor_member_id,
                key_id: audit.actor_key_id.unwrap_or_default(),
                key_name: audit.actor.clone(),
                admin: true,
            };
            let change = crate::domain::activity::Change::Unassigned;
            super::activity::record(&txn, &assigned, Some(&by), &change).await?;
        }
        let details = serde_json::json!({"email": m.email, "role": m.role});
        member::Entity::delete_by_id(id)
            .exec(&txn)
            .await
            .map_err(db_err)?;
        insert_audit(&txn, audit.target(format!("member:{id}")).details(details)).await?;
        txn.commit().await.map_err(db_err)
    }

    /// Fails when `leaving` is the last active owner, or when no live owner key would remain.
    async fn keep_an_owner(&self, txn: &DatabaseTransaction, leaving: Uuid) -> Result<(), Error> {
        // Every owner row is locked, the leaving one included, so two owners stepping down at
        // once cannot each count on the other.
        let owners = member::Entity::find()
            .filter(member::Column::Role.eq("owner"))
            .filter(member::Column::Status.eq("active"))
            .lock_exclusive()
            .all(txn)
            .await
            .map_err(db_err)?;
        if owners.iter().all(|m| m.id == leaving) {
            return Err(Error::Conflict("at least one owner must remain".into()));
        }
        let keys: Vec<Uuid> = api_key::Entity::find()
            .select_only()
            .column(api_key::Column::Id)
            .filter(api_key::Column::MemberId.eq(leaving))
            .into_tuple()
            .all(txn)
            .await
            .map_err(db_err)?;
        keep_an_owner_key(txn, &keys, Utc::now().timestamp_millis()).await
    }

    /// Writes one audit entry on its own (for changes stored outside this module).
    pub async fn record_audit(&self, a: NewAudit) -> Result<(), Error> {
        insert_audit(&self.db, a).await
    }

    /// Audit entries, newest first, before sequence `before`; only `project`'s when given.
    /// Returns the page and the cursor of the next one.
    pub async fn list_audit(
        &self,
        project: Option<Uuid>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<(Vec<AuditRecord>, Option<i64>), Error> {
        let mut q = audit::Entity::find().order_by_desc(audit::Column::Seq);
        if let Some(p) = project {
            q = q.filter(audit::Column::ProjectId.eq(p));
        }
        if let Some(b) = before {
            q = q.filter(audit::Column::Seq.lt(b));
        }
        let mut rows = q.limit(limit + 1).all(&self.db).await.map_err(db_err)?;
        let next = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.seq)
        } else {
            None
        };
        Ok((
            rows.into_iter()
                .map(|r| AuditRecord {
                    seq: r.seq,
                    id: r.id,
                    at: r.at,
                    project_id: r.project_id,
                    actor_key_id: r.actor_key_id,
                    actor_member_id: r.actor_member_id,
                    actor: r.actor,
                    action: r.action,
                    target: r.target,
                    details: r.details,
                    peer_ip: r.peer_ip,
                })
                .collect(),
            next,
        ))
    }
}
