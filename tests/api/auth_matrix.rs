//! The auth matrix: walks `faultline::auth::routes::ROUTES` — every route of both transports —
//! and calls each with no key, another project's key, an expired key, a revoked key and a key
//! of each single scope, checking 401 / 403 / 404 / success against what the table declares.
//! A route in the table without a sample here fails the test, as does a faultline gRPC method
//! missing from the table (see the unit test in `src/auth/routes.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

use faultline::{
    auth::{
        Scope,
        routes::{Need, ROUTES, Route, Transport},
    },
    pb::{
        self, capture_service_client::CaptureServiceClient,
        group_service_client::GroupServiceClient, project_service_client::ProjectServiceClient,
        settings_service_client::SettingsServiceClient,
    },
};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::helpers::{TestApp, s, spawn_app};

/// What one call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok,
    Unauthenticated,
    Forbidden,
    NotFound,
    Other(String),
}

/// What a key restricted to another project gets.
#[derive(Debug, Clone, Copy)]
enum OtherProject {
    /// It works, on the key's own project.
    Ok,
    /// The id belongs to the first project: it does not exist for this key.
    NotFound,
    /// Installation-wide changes are not for a project-restricted key.
    Forbidden,
}

/// The operations behind the routes; a REST route and its gRPC method share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Capture,
    CaptureMessage,
    CaptureBatch,
    ListEvents,
    SearchEvents,
    GetEvent,
    ListGroups,
    GetGroup,
    ListGroupEvents,
    Resolve,
    Unresolve,
    Ignore,
    DeleteGroup,
    Bulk,
    Export,
    GetRetention,
    SetRetention,
    CreateKey,
    ListKeys,
    RevokeKey,
    ListMembers,
    Invite,
    Accept,
    UpdateMember,
    RemoveMember,
    AuditLog,
    CreateProject,
    ListProjects,
    GetProject,
    RenameProject,
    DeleteProject,
    HealthCheck,
    HealthWatch,
    ReflectionV1,
    ReflectionV1alpha,
}

fn op_of(r: &Route) -> Op {
    use Op::*;
    match (r.transport, r.method, r.path) {
        (Transport::Grpc, _, p) => match p.rsplit('/').next().unwrap_or("") {
            "Capture" => Capture,
            "CaptureMessage" => CaptureMessage,
            "CaptureBatch" => CaptureBatch,
            "ListEvents" => ListEvents,
            "SearchEvents" => SearchEvents,
            "GetEvent" => GetEvent,
            "ListGroups" => ListGroups,
            "GetGroup" => GetGroup,
            "ListGroupEvents" => ListGroupEvents,
            "ResolveGroup" => Resolve,
            "UnresolveGroup" => Unresolve,
            "IgnoreGroup" => Ignore,
            "DeleteGroup" => DeleteGroup,
            "BulkUpdateGroups" => Bulk,
            "ExportEvents" => Export,
            "GetRetention" => GetRetention,
            "SetRetention" => SetRetention,
            "CreateApiKey" => CreateKey,
            "ListApiKeys" => ListKeys,
            "RevokeApiKey" => RevokeKey,
            "ListMembers" => ListMembers,
            "InviteMember" => Invite,
            "AcceptInvite" => Accept,
            "UpdateMember" => UpdateMember,
            "RemoveMember" => RemoveMember,
            "ListAuditLog" => AuditLog,
            "CreateProject" => CreateProject,
            "ListProjects" => ListProjects,
            "GetProject" => GetProject,
            "RenameProject" => RenameProject,
            "DeleteProject" => DeleteProject,
            "Check" => HealthCheck,
            "Watch" => HealthWatch,
            "ServerReflectionInfo" if p.contains("v1alpha") => ReflectionV1alpha,
            "ServerReflectionInfo" => ReflectionV1,
            _ => panic!("no matrix sample for gRPC route {p}: add one in tests/api/auth_matrix.rs"),
        },
        (Transport::Rest, m, p) => match (m, p) {
            ("POST", "/v1/errors/capture") => Capture,
            ("POST", "/v1/errors/capture/batch") => CaptureBatch,
            ("POST", "/v1/errors/message") => CaptureMessage,
            ("GET", "/v1/errors/list") => ListEvents,
            ("GET", "/v1/errors/search") => SearchEvents,
            ("GET", "/v1/errors/get/{event_id}") => GetEvent,
            ("GET", "/v1/errors/groups") => ListGroups,
            ("GET", "/v1/errors/group_detail/{error_group_id}") => GetGroup,
            ("GET", "/v1/errors/events/{error_group_id}") => ListGroupEvents,
            ("POST", "/v1/errors/resolve/{error_group_id}") => Resolve,
            ("POST", "/v1/errors/unresolve/{error_group_id}") => Unresolve,
            ("POST", "/v1/errors/ignore/{error_group_id}") => Ignore,
            ("DELETE", "/v1/errors/delete/{error_group_id}") => DeleteGroup,
            ("POST", "/v1/errors/bulk") => Bulk,
            ("POST", "/v1/errors/export") => Export,
            ("GET", "/v1/errors/retention/get") => GetRetention,
            ("PUT", "/v1/errors/retention/set") => SetRetention,
            ("POST", "/api/settings/api-keys") => CreateKey,
            ("GET", "/api/settings/api-keys") => ListKeys,
            ("DELETE", "/api/settings/api-keys/{id}") => RevokeKey,
            ("GET", "/api/settings/team") => ListMembers,
            ("POST", "/api/settings/team/invite") => Invite,
            ("POST", "/api/settings/team/invite/accept") => Accept,
            ("PUT", "/api/settings/team/{id}") => UpdateMember,
            ("DELETE", "/api/settings/team/{id}") => RemoveMember,
            ("GET", "/api/settings/audit-log") => AuditLog,
            ("POST", "/v1/projects/create") => CreateProject,
            ("GET", "/v1/projects/list") => ListProjects,
            ("GET", "/v1/projects/get/{project_id}") => GetProject,
            ("PUT", "/v1/projects/rename/{project_id}") => RenameProject,
            ("DELETE", "/v1/projects/delete/{project_id}") => DeleteProject,
            _ => panic!(
                "no matrix sample for REST route {m} {p}: add one in tests/api/auth_matrix.rs"
            ),
        },
    }
}

fn other_project(op: Op) -> OtherProject {
    use Op::*;
    match op {
        GetEvent | GetGroup | ListGroupEvents | Resolve | Unresolve | Ignore | DeleteGroup
        | RevokeKey | GetProject | RenameProject | DeleteProject => OtherProject::NotFound,
        Invite | UpdateMember | RemoveMember | CreateProject => OtherProject::Forbidden,
        _ => OtherProject::Ok,
    }
}

/// The ids a call works on, made fresh where the call consumes them.
#[derive(Default, Clone)]
struct Target {
    event_id: String,
    group_id: String,
    key_id: String,
    member_id: String,
    project_id: String,
    invite_token: String,
    email: String,
}

/// One server with one credential per column of the matrix.
struct Fixture {
    app: TestApp,
    channel: Channel,
    home: String,
    /// An event and group of the first project, for the calls that do not consume them.
    event_id: String,
    group_id: String,
    other_key: String,
    expired_key: String,
    revoked_key: String,
    scope_keys: Vec<(Scope, String)>,
    seq: AtomicUsize,
}

/// Creates a key with the owner key over REST; returns (id, secret).
pub async fn make_key(app: &TestApp, body: Value) -> (String, String) {
    let r = app
        .send(
            app.authed(Method::POST, "/api/settings/api-keys")
                .json(&body),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "create key {body}: {}", r.text);
    (s(&r.body["data"]["id"]), s(&r.body["data"]["api_key"]))
}

impl Fixture {
    async fn new() -> Fixture {
        let app = spawn_app().await;
        let channel = app.channel().await;
        let projects = app.get_ok("/v1/projects/list").await;
        let home = s(&projects["projects"][0]["id"]);
        let other = app
            .post_ok("/v1/projects/create", &json!({"name": "other"}))
            .await;
        let other_id = s(&other["id"]);
        let all = json!(["ingest", "read", "write", "admin", "owner"]);
        let (_, other_key) = make_key(
            &app,
            json!({"name": "other project", "permissions": all, "project_id": other_id}),
        )
        .await;
        let soon = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
        let (_, expired_key) = make_key(
            &app,
            json!({"name": "expiring", "permissions": all, "expires_at": soon.to_rfc3339()}),
        )
        .await;
        let (revoked_id, revoked_key) =
            make_key(&app, json!({"name": "revoked", "permissions": all})).await;
        let r = app
            .send(app.authed(
                Method::DELETE,
                &format!("/api/settings/api-keys/{revoked_id}"),
            ))
            .await;
        assert_eq!(r.status.as_u16(), 204, "revoke: {}", r.text);
        let mut scope_keys = Vec::new();
        for scope in [
            Scope::Ingest,
            Scope::Read,
            Scope::Write,
            Scope::Admin,
            Scope::Owner,
        ] {
            let (_, k) = make_key(
                &app,
                json!({"name": format!("only {}", scope.as_str()), "permissions": [scope.as_str()]}),
            )
            .await;
            scope_keys.push((scope, k));
        }
        let (event_id, group_id) = app.capture_text("matrix boom").await;
        // Let the expiring key expire before the matrix starts.
        let wait = soon - chrono::Utc::now();
        if let Ok(w) = wait.to_std() {
            tokio::time::sleep(w + std::time::Duration::from_millis(100)).await;
        }
        Fixture {
            app,
            channel,
            home,
            event_id,
            group_id,
            other_key,
            expired_key,
            revoked_key,
            scope_keys,
            seq: AtomicUsize::new(0),
        }
    }

    fn next(&self) -> usize {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Prepares what `op` works on, with the owner key.
    async fn target(&self, op: Op) -> Target {
        let app = &self.app;
        let mut t = Target {
            event_id: self.event_id.clone(),
            group_id: self.group_id.clone(),
            project_id: self.home.clone(),
            email: format!("person{}@example.com", self.next()),
            ..Target::default()
        };
        match op {
            Op::DeleteGroup => {
                let (e, g) = app.capture_text(&format!("doomed {}", self.next())).await;
                t.event_id = e;
                t.group_id = g;
            }
            Op::RevokeKey => {
                t.key_id = make_key(app, json!({"name": "to revoke", "permissions": ["read"]}))
                    .await
                    .0;
            }
            Op::UpdateMember | Op::RemoveMember | Op::Accept => {
                let r = app
                    .send(
                        app.authed(Method::POST, "/api/settings/team/invite")
                            .json(&json!({"email": t.email, "role": "viewer"})),
                    )
                    .await;
                assert_eq!(r.status.as_u16(), 201, "invite: {}", r.text);
                t.member_id = s(&r.body["data"]["id"]);
                t.invite_token = s(&r.body["data"]["invite_token"]);
            }
            Op::DeleteProject => {
                let p = app
                    .post_ok(
                        "/v1/projects/create",
                        &json!({"name": format!("doomed {}", self.next())}),
                    )
                    .await;
                t.project_id = s(&p["id"]);
            }
            _ => {}
        }
        t
    }
}

fn rest_body(op: Op, t: &Target) -> Option<Value> {
    Some(match op {
        Op::Capture => json!({"message": "matrix capture"}),
        Op::CaptureBatch => json!({"events": [{"message": "matrix batch"}]}),
        Op::CaptureMessage => json!({"text": "matrix message"}),
        Op::Bulk => json!({"error_group_ids": [t.group_id], "action": "resolve"}),
        Op::Export => json!({"format": "json"}),
        Op::SetRetention => json!({"days": 30}),
        Op::CreateKey => json!({"name": "made in the matrix", "permissions": ["read"]}),
        Op::Invite => json!({"email": t.email, "role": "viewer"}),
        Op::Accept => json!({"invite_token": t.invite_token}),
        Op::UpdateMember => json!({"role": "developer"}),
        Op::CreateProject | Op::RenameProject => json!({"name": "matrix project"}),
        _ => return None,
    })
}

fn rest_outcome(status: u16, body: &Value) -> Outcome {
    let code = body["error"]["code"].as_str().unwrap_or("");
    match (status, code) {
        (200..=299, _) => Outcome::Ok,
        (401, "UNAUTHORIZED") => Outcome::Unauthenticated,
        (403, "FORBIDDEN") => Outcome::Forbidden,
        (404, "NOT_FOUND") => Outcome::NotFound,
        _ => Outcome::Other(format!("{status} {body}")),
    }
}

async fn call_rest(fx: &Fixture, r: &Route, op: Op, t: &Target, key: Option<&str>) -> Outcome {
    let id = match op {
        Op::RevokeKey => &t.key_id,
        _ => &t.member_id,
    };
    let path = r
        .path
        .replace("{event_id}", &t.event_id)
        .replace("{error_group_id}", &t.group_id)
        .replace("{project_id}", &t.project_id)
        .replace("{id}", id);
    let path = match op {
        Op::SearchEvents => format!("{path}?q=boom"),
        _ => path,
    };
    let method = Method::from_bytes(r.method.as_bytes()).expect("method");
    let mut rb = fx.app.anon(method, &path);
    if let Some(k) = key {
        rb = rb.header("X-API-Key", k);
    }
    if let Some(b) = rest_body(op, t) {
        rb = rb.json(&b);
    }
    let resp = fx.app.send(rb).await;
    rest_outcome(resp.status.as_u16(), &resp.body)
}

fn grpc_req<T>(msg: T, key: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(k) = key {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {k}").parse().expect("ascii key"),
        );
    }
    r
}

fn grpc_outcome<T>(r: Result<T, tonic::Status>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(st) => match st.code() {
            tonic::Code::Unauthenticated => Outcome::Unauthenticated,
            tonic::Code::PermissionDenied => Outcome::Forbidden,
            tonic::Code::NotFound => Outcome::NotFound,
            c => Outcome::Other(format!("{c:?}: {}", st.message())),
        },
    }
}

async fn call_grpc(fx: &Fixture, op: Op, t: &Target, key: Option<&str>) -> Outcome {
    let ch = fx.channel.clone();
    let mut capture = CaptureServiceClient::new(ch.clone());
    let mut groups = GroupServiceClient::new(ch.clone());
    let mut settings = SettingsServiceClient::new(ch.clone());
    let mut projects = ProjectServiceClient::new(ch.clone());
    let group_id = t.group_id.clone();
    match op {
        Op::Capture => grpc_outcome(
            capture
                .capture(grpc_req(
                    pb::CaptureRequest {
                        message: "matrix capture".into(),
                        ..Default::default()
                    },
                    key,
                ))
                .await,
        ),
        Op::CaptureMessage => grpc_outcome(
            capture
                .capture_message(grpc_req(
                    pb::CaptureMessageRequest {
                        text: "matrix message".into(),
                        ..Default::default()
                    },
                    key,
                ))
                .await,
        ),
        Op::CaptureBatch => grpc_outcome(
            capture
                .capture_batch(grpc_req(
                    pb::CaptureBatchRequest {
                        events: vec![pb::CaptureRequest {
                            message: "matrix batch".into(),
                            ..Default::default()
                        }],
                    },
                    key,
                ))
                .await,
        ),
        Op::ListEvents => grpc_outcome(
            groups
                .list_events(grpc_req(pb::ListEventsRequest::default(), key))
                .await,
        ),
        Op::SearchEvents => grpc_outcome(
            groups
                .search_events(grpc_req(
                    pb::SearchEventsRequest {
                        q: "boom".into(),
                        ..Default::default()
                    },
                    key,
                ))
                .await,
        ),
        Op::GetEvent => grpc_outcome(
            groups
                .get_event(grpc_req(
                    pb::GetEventRequest {
                        event_id: t.event_id.clone(),
                    },
                    key,
                ))
                .await,
        ),
        Op::ListGroups => grpc_outcome(
            groups
                .list_groups(grpc_req(pb::ListGroupsRequest::default(), key))
                .await,
        ),
        Op::GetGroup => grpc_outcome(
            groups
                .get_group(grpc_req(pb::GetGroupRequest { group_id }, key))
                .await,
        ),
        Op::ListGroupEvents => grpc_outcome(
            groups
                .list_group_events(grpc_req(
                    pb::ListGroupEventsRequest {
                        group_id,
                        ..Default::default()
                    },
                    key,
                ))
                .await,
        ),
        Op::Resolve => grpc_outcome(
            groups
                .resolve_group(grpc_req(pb::ResolveGroupRequest { group_id }, key))
                .await,
        ),
        Op::Unresolve => grpc_outcome(
            groups
                .unresolve_group(grpc_req(pb::UnresolveGroupRequest { group_id }, key))
                .await,
        ),
        Op::Ignore => grpc_outcome(
            groups
                .ignore_group(grpc_req(pb::IgnoreGroupRequest { group_id }, key))
                .await,
        ),
        Op::DeleteGroup => grpc_outcome(
            groups
                .delete_group(grpc_req(pb::DeleteGroupRequest { group_id }, key))
                .await,
        ),
        Op::Bulk => grpc_outcome(
            groups
                .bulk_update_groups(grpc_req(
                    pb::BulkUpdateGroupsRequest {
                        group_ids: vec![group_id],
                        action: pb::BulkAction::Resolve as i32,
                    },
                    key,
                ))
                .await,
        ),
        Op::Export => grpc_outcome(
            groups
                .export_events(grpc_req(pb::ExportEventsRequest::default(), key))
                .await,
        ),
        Op::GetRetention => grpc_outcome(
            settings
                .get_retention(grpc_req(pb::GetRetentionRequest {}, key))
                .await,
        ),
        Op::SetRetention => grpc_outcome(
            settings
                .set_retention(grpc_req(
                    pb::SetRetentionRequest {
                        days: 30,
                        ..Default::default()
                    },
                    key,
                ))
                .await,
        ),
        Op::CreateKey => grpc_outcome(
            settings
                .create_api_key(grpc_req(
                    pb::CreateApiKeyRequest {
                        name: "made in the matrix".into(),
                        permissions: vec!["read".into()],
                        ..Default::default()
                    },
                    key,
                ))
                .await,
        ),
        Op::ListKeys => grpc_outcome(
            settings
                .list_api_keys(grpc_req(pb::ListApiKeysRequest {}, key))
                .await,
        ),
        Op::RevokeKey => grpc_outcome(
            settings
                .revoke_api_key(grpc_req(
                    pb::RevokeApiKeyRequest {
                        id: t.key_id.clone(),
                    },
                    key,
                ))
                .await,
        ),
        Op::ListMembers => grpc_outcome(
            settings
                .list_members(grpc_req(pb::ListMembersRequest {}, key))
                .await,
        ),
        Op::Invite => grpc_outcome(
            settings
                .invite_member(grpc_req(
                    pb::InviteMemberRequest {
                        email: t.email.clone(),
                        role: pb::Role::Viewer as i32,
                        name: String::new(),
                    },
                    key,
                ))
                .await,
        ),
        Op::Accept => grpc_outcome(
            settings
                .accept_invite(grpc_req(
                    pb::AcceptInviteRequest {
                        invite_token: t.invite_token.clone(),
                        name: String::new(),
                    },
                    key,
                ))
                .await,
        ),
        Op::UpdateMember => grpc_outcome(
            settings
                .update_member(grpc_req(
                    pb::UpdateMemberRequest {
                        id: t.member_id.clone(),
                        role: pb::Role::Developer as i32,
                    },
                    key,
                ))
                .await,
        ),
        Op::RemoveMember => grpc_outcome(
            settings
                .remove_member(grpc_req(
                    pb::RemoveMemberRequest {
                        id: t.member_id.clone(),
                    },
                    key,
                ))
                .await,
        ),
        Op::AuditLog => grpc_outcome(
            settings
                .list_audit_log(grpc_req(pb::ListAuditLogRequest::default(), key))
                .await,
        ),
        Op::CreateProject => grpc_outcome(
            projects
                .create_project(grpc_req(
                    pb::CreateProjectRequest {
                        name: "matrix project".into(),
                    },
                    key,
                ))
                .await,
        ),
        Op::ListProjects => grpc_outcome(
            projects
                .list_projects(grpc_req(pb::ListProjectsRequest {}, key))
                .await,
        ),
        Op::GetProject => grpc_outcome(
            projects
                .get_project(grpc_req(
                    pb::GetProjectRequest {
                        project_id: t.project_id.clone(),
                    },
                    key,
                ))
                .await,
        ),
        Op::RenameProject => grpc_outcome(
            projects
                .rename_project(grpc_req(
                    pb::RenameProjectRequest {
                        project_id: t.project_id.clone(),
                        name: "matrix project".into(),
                    },
                    key,
                ))
                .await,
        ),
        Op::DeleteProject => grpc_outcome(
            projects
                .delete_project(grpc_req(
                    pb::DeleteProjectRequest {
                        project_id: t.project_id.clone(),
                    },
                    key,
                ))
                .await,
        ),
        Op::HealthCheck | Op::HealthWatch => {
            use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
            let mut health = HealthClient::new(ch);
            let req = HealthCheckRequest {
                service: String::new(),
            };
            if op == Op::HealthCheck {
                grpc_outcome(health.check(grpc_req(req, key)).await)
            } else {
                grpc_outcome(health.watch(grpc_req(req, key)).await)
            }
        }
        Op::ReflectionV1 => {
            use tonic_reflection::pb::v1::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
            };
            let req = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut c = ServerReflectionClient::new(ch);
            grpc_outcome(
                c.server_reflection_info(grpc_req(tokio_stream::iter(vec![req]), key))
                    .await,
            )
        }
        Op::ReflectionV1alpha => {
            use tonic_reflection::pb::v1alpha::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
            };
            let req = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut c = ServerReflectionClient::new(ch);
            grpc_outcome(
                c.server_reflection_info(grpc_req(tokio_stream::iter(vec![req]), key))
                    .await,
            )
        }
    }
}

async fn call(fx: &Fixture, r: &Route, key: Option<&str>) -> Outcome {
    let op = op_of(r);
    let t = fx.target(op).await;
    match r.transport {
        Transport::Rest => call_rest(fx, r, op, &t, key).await,
        Transport::Grpc => call_grpc(fx, op, &t, key).await,
    }
}

/// Whether a key holding only `held` passes a route needing `needed`.
fn grants(held: Scope, needed: Scope) -> bool {
    held == needed || held == Scope::Owner || (held == Scope::Admin && needed != Scope::Owner)
}

async fn walk(transport: Transport) {
    let fx = Fixture::new().await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for r in ROUTES.iter().filter(|r| r.transport == transport) {
        let mut check = |who: &str, want: Outcome, got: Outcome| {
            cells += 1;
            if want != got {
                failures.push(format!(
                    "{} {} with {who}: expected {want:?}, got {got:?}",
                    r.method, r.path
                ));
            }
        };
        match r.need {
            Need::Public => {
                check("no key", Outcome::Ok, call(&fx, r, None).await);
            }
            Need::SentryKey => {
                check("no key", Outcome::Unauthenticated, call(&fx, r, None).await);
            }
            Need::Scope(needed) => {
                check("no key", Outcome::Unauthenticated, call(&fx, r, None).await);
                check(
                    "an expired key",
                    Outcome::Unauthenticated,
                    call(&fx, r, Some(&fx.expired_key)).await,
                );
                check(
                    "a revoked key",
                    Outcome::Unauthenticated,
                    call(&fx, r, Some(&fx.revoked_key)).await,
                );
                check(
                    "an unknown key",
                    Outcome::Unauthenticated,
                    call(&fx, r, Some("flt_not-a-key")).await,
                );
                let want = match other_project(op_of(r)) {
                    OtherProject::Ok => Outcome::Ok,
                    OtherProject::NotFound => Outcome::NotFound,
                    OtherProject::Forbidden => Outcome::Forbidden,
                };
                check(
                    "another project's key",
                    want,
                    call(&fx, r, Some(&fx.other_key)).await,
                );
                for (held, key) in &fx.scope_keys {
                    let want = if grants(*held, needed) {
                        Outcome::Ok
                    } else {
                        Outcome::Forbidden
                    };
                    check(
                        &format!("a '{}' key", held.as_str()),
                        want,
                        call(&fx, r, Some(key)).await,
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} matrix cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cells > 100, "the matrix checked only {cells} cells");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_rest() {
    walk(Transport::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_grpc() {
    walk(Transport::Grpc).await;
}
