//! `/api/settings/*` (seed document 004): API keys, the team and the audit log, onto
//! `SettingsService`. Answers use that document's envelope `{"data": …, "status": "success"}`;
//! errors keep the product's documented error body.

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::ApiError,
    errors_api::time_json,
    extract::{ApiJson, Ctx},
};
use crate::{
    error::Error,
    grpc::{Api, convert},
    pb::{self, settings_service_server::SettingsService},
};

type ApiResult = Result<Response, ApiError>;

pub fn routes() -> Router<Api> {
    Router::new()
        .route("/api/settings/api-keys", get(list_keys).post(create_key))
        .route(
            "/api/settings/api-keys/{id}",
            axum::routing::delete(revoke_key),
        )
        .route("/api/settings/team", get(list_members))
        .route("/api/settings/team/invite", post(invite))
        .route("/api/settings/team/invite/accept", post(accept))
        .route(
            "/api/settings/team/{id}",
            put(update_member).delete(remove_member),
        )
        .route("/api/settings/audit-log", get(audit_log))
}

/// A text field of the answer: `null` when the protobuf left it empty.
pub(super) fn opt(s: String) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s)
    }
}

/// The seed document's success envelope (also `alerts_api`'s).
pub(super) fn ok(status: StatusCode, data: Value) -> Response {
    (status, Json(json!({"data": data, "status": "success"}))).into_response()
}

fn key_json(k: Option<pb::ApiKey>) -> Result<Value, Error> {
    let pb::ApiKey {
        id,
        name,
        key_preview,
        permissions,
        expires_at,
        last_used,
        created_at,
        project_id,
        member_id,
    } = k.ok_or_else(|| Error::Internal("answer without a key".into()))?;
    Ok(json!({
        "id": id,
        "name": name,
        "key_preview": key_preview,
        "permissions": permissions,
        "expires_at": time_json(expires_at),
        "last_used": time_json(last_used),
        "created_at": time_json(created_at),
        "project_id": opt(project_id),
        "member_id": opt(member_id),
    }))
}

fn role_json(v: i32) -> &'static str {
    match pb::Role::try_from(v) {
        Ok(pb::Role::Owner) => "owner",
        Ok(pb::Role::Admin) => "admin",
        Ok(pb::Role::Developer) => "developer",
        Ok(pb::Role::Viewer) => "viewer",
        _ => "unknown",
    }
}

fn role_pb(field: &str, s: &str) -> Result<i32, Error> {
    Ok(match s.trim() {
        "owner" => pb::Role::Owner,
        "admin" => pb::Role::Admin,
        "developer" => pb::Role::Developer,
        "viewer" => pb::Role::Viewer,
        "" => return Err(Error::required(field)),
        _ => {
            return Err(Error::invalid_field(
                field,
                "must be one of owner, admin, developer, viewer",
                "INVALID_ENUM",
            ));
        }
    } as i32)
}

fn member_json(m: Option<pb::Member>) -> Result<Value, Error> {
    let pb::Member {
        id,
        name,
        email,
        role,
        status,
        last_active,
        created_at,
    } = m.ok_or_else(|| Error::Internal("answer without a member".into()))?;
    Ok(json!({
        "id": id,
        "name": name,
        "email": email,
        "role": role_json(role),
        "status": match pb::MemberStatus::try_from(status) {
            Ok(pb::MemberStatus::Pending) => "pending",
            Ok(pb::MemberStatus::Active) => "active",
            _ => "unknown",
        },
        "last_active": time_json(last_active),
        "created_at": time_json(created_at),
    }))
}

#[derive(Deserialize)]
struct CreateKeyBody {
    name: String,
    permissions: Vec<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
}

async fn create_key(
    State(api): State<Api>,
    ctx: Ctx,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> ApiResult {
    let CreateKeyBody {
        name,
        permissions,
        expires_at,
        project_id,
    } = body;
    let expires_at = match expires_at.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(convert::ts(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    Error::invalid_field("expires_at", "must be an RFC 3339 time", "INVALID_TIME")
                })?
                .to_utc(),
        )),
    };
    let req = pb::CreateApiKeyRequest {
        name,
        permissions,
        expires_at,
        project_id: project_id.unwrap_or_default(),
    };
    let pb::CreateApiKeyResponse { key, secret } =
        api.create_api_key(ctx.request(req)).await?.into_inner();
    let mut v = key_json(key)?;
    v["api_key"] = Value::String(secret);
    Ok(ok(StatusCode::CREATED, v))
}

async fn list_keys(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::ListApiKeysResponse { keys } = api
        .list_api_keys(ctx.request(pb::ListApiKeysRequest {}))
        .await?
        .into_inner();
    let keys = keys
        .into_iter()
        .map(|k| key_json(Some(k)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(StatusCode::OK, json!({ "api_keys": keys })))
}

async fn revoke_key(State(api): State<Api>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let pb::RevokeApiKeyResponse {} = api
        .revoke_api_key(ctx.request(pb::RevokeApiKeyRequest { id }))
        .await?
        .into_inner();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_members(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::ListMembersResponse { members } = api
        .list_members(ctx.request(pb::ListMembersRequest {}))
        .await?
        .into_inner();
    let members = members
        .into_iter()
        .map(|m| member_json(Some(m)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(StatusCode::OK, json!({ "members": members })))
}

#[derive(Deserialize)]
struct InviteBody {
    email: String,
    role: String,
    #[serde(default)]
    name: String,
}

async fn invite(State(api): State<Api>, ctx: Ctx, ApiJson(body): ApiJson<InviteBody>) -> ApiResult {
    let InviteBody { email, role, name } = body;
    let req = pb::InviteMemberRequest {
        email,
        role: role_pb("role", &role)?,
        name,
    };
    let pb::InviteMemberResponse {
        member,
        invite_token,
    } = api.invite_member(ctx.request(req)).await?.into_inner();
    let mut v = member_json(member)?;
    v["invite_token"] = Value::String(invite_token);
    Ok(ok(StatusCode::CREATED, v))
}

#[derive(Deserialize)]
struct AcceptBody {
    #[serde(alias = "token")]
    invite_token: String,
    #[serde(default)]
    name: String,
}

async fn accept(State(api): State<Api>, ctx: Ctx, ApiJson(body): ApiJson<AcceptBody>) -> ApiResult {
    let AcceptBody { invite_token, name } = body;
    let pb::AcceptInviteResponse {
        member,
        key,
        secret,
    } = api
        .accept_invite(ctx.request(pb::AcceptInviteRequest { invite_token, name }))
        .await?
        .into_inner();
    let mut key = key_json(key)?;
    key["api_key"] = Value::String(secret.clone());
    Ok(ok(
        StatusCode::OK,
        json!({"member": member_json(member)?, "api_key": secret, "key": key}),
    ))
}

#[derive(Deserialize)]
struct RoleBody {
    role: String,
}

async fn update_member(
    State(api): State<Api>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult {
    let RoleBody { role } = body;
    let req = pb::UpdateMemberRequest {
        id,
        role: role_pb("role", &role)?,
    };
    let pb::UpdateMemberResponse { member } =
        api.update_member(ctx.request(req)).await?.into_inner();
    Ok(ok(StatusCode::OK, member_json(member)?))
}

async fn remove_member(State(api): State<Api>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let pb::RemoveMemberResponse {} = api
        .remove_member(ctx.request(pb::RemoveMemberRequest { id }))
        .await?
        .into_inner();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn audit_log(State(api): State<Api>, ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult {
    let mut req = pb::ListAuditLogRequest::default();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "limit" => {
                req.limit = v.trim().parse().map_err(|_| {
                    Error::invalid_field("limit", "must be a non-negative integer", "INVALID_TYPE")
                })?
            }
            "cursor" => req.cursor = v.into_owned(),
            other => return Err(Error::malformed(other, "is not a known query parameter").into()),
        }
    }
    let pb::ListAuditLogResponse {
        entries,
        next_cursor,
    } = api.list_audit_log(ctx.request(req)).await?.into_inner();
    let entries: Vec<Value> = entries
        .into_iter()
        .map(
            |pb::AuditEntry {
                 id,
                 time,
                 actor,
                 actor_key_id,
                 actor_member_id,
                 action,
                 target,
                 project_id,
                 details_json,
                 peer_ip,
             }| {
                json!({
                    "id": id,
                    "time": time_json(time),
                    "actor": actor,
                    "actor_key_id": opt(actor_key_id),
                    "actor_member_id": opt(actor_member_id),
                    "action": action,
                    "target": target,
                    "project_id": opt(project_id),
                    "details": serde_json::from_str::<Value>(&details_json).unwrap_or(Value::String(details_json)),
                    "ip": peer_ip,
                })
            },
        )
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({"entries": entries, "next_cursor": if next_cursor.is_empty() { Value::Null } else { Value::String(next_cursor) }}),
    ))
}
