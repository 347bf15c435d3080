//! API keys, the team and the audit log: the `SettingsService` methods beyond retention.
//! `settings.rs` hands each trait method to the matching function here.

use std::net::SocketAddr;

use chrono::{Duration as ChronoDuration, Utc};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Api, convert};
use crate::{
    auth::{self, Principal, Scope, keys, roles::Role},
    domain::model::from_millis,
    error::Error,
    pb,
    store::{AuditRecord, KeyInfo, MemberInfo, NewAudit, NewInvite, NewKey},
};

/// Longest name of a key, member or project.
pub(super) const MAX_NAME: usize = 200;
/// How long an invite token stays valid.
const INVITE_TTL_DAYS: i64 = 7;
/// Largest page of the audit log.
const AUDIT_PAGE_MAX: u32 = 500;
const AUDIT_PAGE_DEFAULT: u32 = 100;

/// The address the request came from, as the listener saw it.
pub(super) fn peer_ip(ext: &http::Extensions) -> String {
    ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// An audit entry for a change `p` makes with this request.
pub(super) fn audit(p: &Principal, ext: &http::Extensions, action: &str) -> NewAudit {
    NewAudit {
        actor_key_id: Some(p.key_id),
        actor_member_id: p.member_id,
        actor: p.key_name.clone(),
        peer_ip: peer_ip(ext),
        action: action.to_owned(),
        target: String::new(),
        project_id: None,
        details: serde_json::Value::Object(Default::default()),
    }
}

/// A trimmed name of 1 to [`MAX_NAME`] characters.
pub(super) fn name(field: &str, s: &str) -> Result<String, Error> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::required(field));
    }
    if s.chars().count() > MAX_NAME {
        return Err(Error::invalid_field(
            field,
            format!("must be at most {MAX_NAME} characters"),
            "TOO_LONG",
        ));
    }
    Ok(s.to_owned())
}

/// Team changes are installation-wide: a key limited to one project may not make them.
fn unrestricted(p: &Principal, what: &str) -> Result<(), Error> {
    if p.restricted {
        return Err(Error::PermissionDenied(format!(
            "this API key is restricted to one project and cannot {what}"
        )));
    }
    Ok(())
}

fn opt_ts(ms: Option<i64>) -> Option<prost_types::Timestamp> {
    ms.map(|t| convert::ts(from_millis(t)))
}

pub(super) fn key_to_pb(k: KeyInfo) -> pb::ApiKey {
    let KeyInfo {
        id,
        project_id,
        restricted,
        name,
        preview,
        scopes,
        expires_at,
        last_used_at,
        created_at,
        member_id,
    } = k;
    pb::ApiKey {
        id: id.to_string(),
        name,
        key_preview: preview,
        permissions: scopes,
        expires_at: opt_ts(expires_at),
        last_used: opt_ts(last_used_at),
        created_at: opt_ts(Some(created_at)),
        project_id: if restricted {
            project_id.to_string()
        } else {
            String::new()
        },
        member_id: member_id.map(|m| m.to_string()).unwrap_or_default(),
    }
}

fn role_to_pb(r: &str) -> pb::Role {
    match Role::parse(r) {
        Some(Role::Owner) => pb::Role::Owner,
        Some(Role::Admin) => pb::Role::Admin,
        Some(Role::Developer) => pb::Role::Developer,
        Some(Role::Viewer) => pb::Role::Viewer,
        None => pb::Role::Unspecified,
    }
}

fn role_from_pb(v: i32) -> Result<Role, Error> {
    match pb::Role::try_from(v) {
        Ok(pb::Role::Owner) => Ok(Role::Owner),
        Ok(pb::Role::Admin) => Ok(Role::Admin),
        Ok(pb::Role::Developer) => Ok(Role::Developer),
        Ok(pb::Role::Viewer) => Ok(Role::Viewer),
        Ok(pb::Role::Unspecified) => Err(Error::required("role")),
        Err(_) => Err(Error::invalid_field(
            "role",
            "must be one of owner, admin, developer, viewer",
            "INVALID_ENUM",
        )),
    }
}

fn member_to_pb(m: MemberInfo) -> pb::Member {
    let MemberInfo {
        id,
        name,
        email,
        role,
        status,
        last_active,
        created_at,
    } = m;
    pb::Member {
        id: id.to_string(),
        name,
        email,
        role: role_to_pb(&role) as i32,
        status: match status.as_str() {
            "pending" => pb::MemberStatus::Pending,
            "active" => pb::MemberStatus::Active,
            _ => pb::MemberStatus::Unspecified,
        } as i32,
        last_active: opt_ts(last_active),
        created_at: opt_ts(Some(created_at)),
    }
}

fn audit_to_pb(a: AuditRecord) -> pb::AuditEntry {
    let AuditRecord {
        seq: _,
        id,
        at,
        project_id,
        actor_key_id,
        actor_member_id,
        actor,
        action,
        target,
        details,
        peer_ip,
    } = a;
    let text = |u: Option<Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    pb::AuditEntry {
        id: id.to_string(),
        time: opt_ts(Some(at)),
        actor,
        actor_key_id: text(actor_key_id),
        actor_member_id: text(actor_member_id),
        action,
        target,
        project_id: text(project_id),
        details_json: details,
        peer_ip,
    }
}

impl Api {
    pub(super) async fn create_api_key_op(
        &self,
        req: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        let entry = audit(&p, req.extensions(), "api_key.create");
        let pb::CreateApiKeyRequest {
            name: key_name,
            permissions,
            expires_at,
            project_id,
        } = req.into_inner();
        let key_name = name("name", &key_name)?;
        let mut scopes: Vec<Scope> = Vec::new();
        for s in &permissions {
            let scope = Scope::parse(s.trim()).ok_or_else(|| {
                Error::invalid_field(
                    "permissions",
                    "must be a list of ingest, read, write, admin, owner",
                    "INVALID_ENUM",
                )
            })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err(Error::required("permissions").into());
        }
        if scopes.contains(&Scope::Owner) && !p.has(Scope::Owner) {
            return Err(
                Error::PermissionDenied("only an owner grants the 'owner' scope".into()).into(),
            );
        }
        let expires_at = match expires_at {
            None => None,
            Some(t) => {
                let t = convert::from_ts("expires_at", t)?;
                if t <= Utc::now() {
                    return Err(Error::invalid_field(
                        "expires_at",
                        "must be in the future",
                        "OUT_OF_RANGE",
                    )
                    .into());
                }
                Some(t.timestamp_millis())
            }
        };
        let (project, restricted) = match project_id.trim() {
            "" => (p.project_id, p.restricted),
            s => {
                let id = convert::uuid("project_id", s)?;
                if !p.sees_project(id) {
                    return Err(Error::NotFound { what: "project" }.into());
                }
                (id, true)
            }
        };
        let secret = keys::generate();
        let key = self
            .store
            .create_key(
                NewKey {
                    project_id: project,
                    restricted,
                    name: key_name,
                    key_hash: keys::hash(&secret),
                    preview: keys::preview(&secret),
                    scopes: auth::roles::scopes_csv(&scopes),
                    expires_at,
                },
                entry,
            )
            .await?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            key: Some(key_to_pb(key)),
            secret,
        }))
    }

    pub(super) async fn list_api_keys_op(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        let pb::ListApiKeysRequest {} = req.into_inner();
        let keys = self
            .store
            .list_keys(p.restricted.then_some(p.project_id))
            .await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: keys.into_iter().map(key_to_pb).collect(),
        }))
    }

    pub(super) async fn revoke_api_key_op(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        let entry = audit(&p, req.extensions(), "api_key.revoke");
        let pb::RevokeApiKeyRequest { id } = req.into_inner();
        let id = convert::uuid("id", &id)?;
        let result = self
            .store
            .revoke_key(
                id,
                p.restricted.then_some(p.project_id),
                p.has(Scope::Owner),
                entry,
            )
            .await;
        self.authn.invalidate();
        result?;
        Ok(Response::new(pb::RevokeApiKeyResponse {}))
    }

    pub(super) async fn list_members_op(
        &self,
        req: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        auth::require(req.extensions(), Scope::Read)?;
        let pb::ListMembersRequest {} = req.into_inner();
        Ok(Response::new(pb::ListMembersResponse {
            members: self
                .store
                .list_members()
                .await?
                .into_iter()
                .map(member_to_pb)
                .collect(),
        }))
    }

    pub(super) async fn invite_member_op(
        &self,
        req: Request<pb::InviteMemberRequest>,
    ) -> Result<Response<pb::InviteMemberResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        unrestricted(&p, "manage the team")?;
        let entry = audit(&p, req.extensions(), "member.invite");
        let pb::InviteMemberRequest {
            email,
            role,
            name: display,
        } = req.into_inner();
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            return Err(Error::required("email").into());
        }
        let valid = email.len() <= 254
            && email
                .split_once('@')
                .is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !d.contains('@'))
            && !email.contains(char::is_whitespace);
        if !valid {
            return Err(
                Error::invalid_field("email", "must be an email address", "INVALID_EMAIL").into(),
            );
        }
        let role = role_from_pb(role)?;
        if role == Role::Owner && !p.has(Scope::Owner) {
            return Err(Error::PermissionDenied("only an owner invites an owner".into()).into());
        }
        let display = if display.trim().is_empty() {
            email.clone()
        } else {
            name("name", &display)?
        };
        let token = keys::invite_token();
        let member = self
            .store
            .invite_member(
                NewInvite {
                    project_id: p.project_id,
                    name: display,
                    email,
                    role: role.as_str().to_owned(),
                    token_hash: keys::hash(&token),
                    expires_at: (Utc::now() + ChronoDuration::days(INVITE_TTL_DAYS))
                        .timestamp_millis(),
                },
                entry,
            )
            .await?;
        Ok(Response::new(pb::InviteMemberResponse {
            member: Some(member_to_pb(member)),
            invite_token: token,
        }))
    }

    pub(super) async fn accept_invite_op(
        &self,
        req: Request<pb::AcceptInviteRequest>,
    ) -> Result<Response<pb::AcceptInviteResponse>, Status> {
        let ip = peer_ip(req.extensions());
        let pb::AcceptInviteRequest {
            invite_token,
            name: display,
        } = req.into_inner();
        let token = invite_token.trim();
        if token.is_empty() {
            return Err(Error::required("invite_token").into());
        }
        let display = if display.trim().is_empty() {
            String::new()
        } else {
            name("name", &display)?
        };
        let secret = keys::generate();
        let (member, key) = self
            .store
            .accept_invite(
                &keys::hash(token),
                &display,
                NewKey {
                    project_id: Uuid::nil(),
                    restricted: false,
                    name: "personal key".into(),
                    key_hash: keys::hash(&secret),
                    preview: keys::preview(&secret),
                    scopes: String::new(),
                    expires_at: None,
                },
                |role| Role::parse(role).map(|r| auth::roles::scopes_csv(r.scopes())),
                ip,
            )
            .await?;
        Ok(Response::new(pb::AcceptInviteResponse {
            member: Some(member_to_pb(member)),
            key: Some(key_to_pb(key)),
            secret,
        }))
    }

    pub(super) async fn update_member_op(
        &self,
        req: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::UpdateMemberResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        unrestricted(&p, "manage the team")?;
        let entry = audit(&p, req.extensions(), "member.update");
        let pb::UpdateMemberRequest { id, role } = req.into_inner();
        let id = convert::uuid("id", &id)?;
        let role = role_from_pb(role)?;
        let result = self
            .store
            .update_member_role(
                id,
                role.as_str(),
                &auth::roles::scopes_csv(role.scopes()),
                p.has(Scope::Owner),
                entry,
            )
            .await;
        self.authn.invalidate();
        Ok(Response::new(pb::UpdateMemberResponse {
            member: Some(member_to_pb(result?)),
        }))
    }

    pub(super) async fn remove_member_op(
        &self,
        req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        unrestricted(&p, "manage the team")?;
        let entry = audit(&p, req.extensions(), "member.remove");
        let pb::RemoveMemberRequest { id } = req.into_inner();
        let id = convert::uuid("id", &id)?;
        let result = self
            .store
            .remove_member(id, p.has(Scope::Owner), entry)
            .await;
        self.authn.invalidate();
        result?;
        Ok(Response::new(pb::RemoveMemberResponse {}))
    }

    pub(super) async fn list_audit_log_op(
        &self,
        req: Request<pb::ListAuditLogRequest>,
    ) -> Result<Response<pb::ListAuditLogResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        let pb::ListAuditLogRequest { limit, cursor } = req.into_inner();
        let limit = match limit {
            0 => AUDIT_PAGE_DEFAULT,
            n if n > AUDIT_PAGE_MAX => {
                return Err(Error::invalid_field(
                    "limit",
                    format!("must be between 1 and {AUDIT_PAGE_MAX}"),
                    "OUT_OF_RANGE",
                )
                .into());
            }
            n => n,
        };
        let before =
            match cursor.trim() {
                "" => None,
                c => Some(c.parse::<i64>().map_err(|_| {
                    Error::malformed("cursor", "is not a cursor this server issued")
                })?),
            };
        let (entries, next) = self
            .store
            .list_audit(
                p.restricted.then_some(p.project_id),
                before,
                u64::from(limit),
            )
            .await?;
        Ok(Response::new(pb::ListAuditLogResponse {
            entries: entries.into_iter().map(audit_to_pb).collect(),
            next_cursor: next.map(|n| n.to_string()).unwrap_or_default(),
        }))
    }
}
