//! The auth matrix: walks `faultline::auth::routes::ROUTES` — every route of both transports —
//! and calls each with no key, another project's key, an expired key, a revoked key and a key
//! of each single scope, checking 401 / 403 / 404 / success against what the table declares.
//! Sentry ingest routes are also called with the project's and another project's DSN public
//! key, and every keyed route with the DSN public key posing as an API key. A route in the
//! table without a sample here fails the test, as does a faultline gRPC method missing from
//! the table (see the unit test in `src/auth/routes.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

use faultline::{
    auth::{
        Scope,
        routes::{Need, ROUTES, Route, Transport},
    },
    pb::{
        self, alert_service_client::AlertServiceClient,
        capture_service_client::CaptureServiceClient, group_service_client::GroupServiceClient,
        insights_service_client::InsightsServiceClient,
        project_service_client::ProjectServiceClient, release_service_client::ReleaseServiceClient,
        settings_service_client::SettingsServiceClient,
    },
};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::helpers::{Resp, TestApp, n, s, spawn_app};

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
    SubmitFeedback,
    ListFeedback,
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
    Assign,
    ListComments,
    ListActivity,
    ListReleases,
    UploadReleaseFile,
    ListReleaseFiles,
    DeleteReleaseFile,
    ListDebugFiles,
    DeleteDebugFiles,
    SentryNewRelease,
    SentryListFiles,
    SentryUploadFile,
    SentryDeleteFile,
    SentryChunkOptions,
    UploadChunks,
    AssembleBundle,
    AddComment,
    DeleteComment,
    EditComment,
    DeleteGroup,
    MergeGroups,
    ListHashes,
    Unmerge,
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
    SentryEnvelope,
    SentryStore,
    SentryReportDialog,
    SentryReportSubmit,
    GetDsn,
    GetIngestPolicy,
    SetIngestPolicy,
    TransitionWorkflow,
    LogReport,
    LogGet,
    MiniApmIngest,
    MiniApmBatch,
    InsightsHealth,
    /// The dashboard's files, the API reference and its OpenAPI document.
    WebPage,
    QueryGroups,
    ElsCreate,
    ElsGet,
    ElsDelete,
    ElsResolve,
    GetStats,
    GetTrends,
    GetPerformance,
    GetServices,
    GetMetrics,
    GetUptime,
    GetPolicy,
    SetPolicy,
    ListIntegrations,
    SetIntegration,
    DeleteIntegration,
    TestIntegration,
    ListAlertRules,
    CreateAlertRule,
    UpdateAlertRule,
    DeleteAlertRule,
    ListIncidents,
    CreateIncident,
    UpdateIncident,
}

/// A caller's credential: an API key, or a Sentry DSN public key (ingest routes only).
#[derive(Debug, Clone, Copy)]
enum Cred<'a> {
    None,
    Key(&'a str),
    Dsn(&'a str),
}

impl<'a> Cred<'a> {
    fn api_key(self) -> Option<&'a str> {
        match self {
            Cred::Key(k) => Some(k),
            _ => None,
        }
    }

    fn dsn_key(self) -> Option<&'a str> {
        match self {
            Cred::Dsn(k) => Some(k),
            _ => None,
        }
    }
}

fn op_of(r: &Route) -> Op {
    use Op::*;
    match (r.transport, r.method, r.path) {
        (Transport::Grpc, _, p) => match p.rsplit('/').next().unwrap_or("") {
            "Capture" => Capture,
            "CaptureMessage" => CaptureMessage,
            "SubmitFeedback" => SubmitFeedback,
            "ListFeedback" => ListFeedback,
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
            "AssignGroup" => Assign,
            "ListGroupComments" => ListComments,
            "ListGroupActivity" => ListActivity,
            "ListReleases" => ListReleases,
            "UploadReleaseFile" => UploadReleaseFile,
            "ListReleaseFiles" => ListReleaseFiles,
            "DeleteReleaseFile" => DeleteReleaseFile,
            "ListDebugFiles" => ListDebugFiles,
            "DeleteDebugFiles" => DeleteDebugFiles,
            "UploadChunks" => UploadChunks,
            "AssembleBundle" => AssembleBundle,
            "AddGroupComment" => AddComment,
            "DeleteGroupComment" => DeleteComment,
            "UpdateGroupComment" => EditComment,
            "DeleteGroup" => DeleteGroup,
            "MergeGroups" => MergeGroups,
            "ListGroupHashes" => ListHashes,
            "UnmergeGroup" => Unmerge,
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
            "CaptureEnvelope" => SentryEnvelope,
            "GetDsn" => GetDsn,
            "GetIngestPolicy" => GetIngestPolicy,
            "SetIngestPolicy" => SetIngestPolicy,
            "TransitionWorkflow" => TransitionWorkflow,
            "GetHealth" => InsightsHealth,
            "QueryGroups" => QueryGroups,
            "GetStats" => GetStats,
            "GetTrends" => GetTrends,
            "GetPerformance" => GetPerformance,
            "GetServices" => GetServices,
            "GetMetrics" => GetMetrics,
            "GetUptime" => GetUptime,
            "GetProjectPolicy" => GetPolicy,
            "SetProjectPolicy" => SetPolicy,
            "ListIntegrations" => ListIntegrations,
            "SetIntegration" => SetIntegration,
            "DeleteIntegration" => DeleteIntegration,
            "TestIntegration" => TestIntegration,
            "ListAlertRules" => ListAlertRules,
            "CreateAlertRule" => CreateAlertRule,
            "UpdateAlertRule" => UpdateAlertRule,
            "DeleteAlertRule" => DeleteAlertRule,
            "ListIncidents" => ListIncidents,
            "CreateIncident" => CreateIncident,
            "UpdateIncident" => UpdateIncident,
            _ => panic!("no matrix sample for gRPC route {p}: add one in tests/api/auth_matrix.rs"),
        },
        (Transport::Rest, m, p) => match (m, p) {
            ("POST", "/v1/errors/capture") => Capture,
            ("POST", "/v1/errors/capture/batch") => CaptureBatch,
            ("POST", "/v1/errors/message") => CaptureMessage,
            ("POST", "/v1/errors/feedback") => SubmitFeedback,
            ("GET", "/v1/errors/feedback") => ListFeedback,
            ("GET", "/v1/errors/list") => ListEvents,
            ("GET", "/v1/errors/search") => SearchEvents,
            ("GET", "/v1/errors/get/{event_id}") => GetEvent,
            ("GET", "/v1/errors/groups") => ListGroups,
            ("GET", "/v1/errors/group_detail/{error_group_id}") => GetGroup,
            ("GET", "/v1/errors/events/{error_group_id}") => ListGroupEvents,
            ("POST", "/v1/errors/resolve/{error_group_id}") => Resolve,
            ("POST", "/v1/errors/unresolve/{error_group_id}") => Unresolve,
            ("POST", "/v1/errors/ignore/{error_group_id}") => Ignore,
            ("POST", "/v1/errors/assign/{error_group_id}") => Assign,
            ("GET", "/v1/errors/comments/{error_group_id}") => ListComments,
            ("GET", "/v1/errors/activity/{error_group_id}") => ListActivity,
            ("GET", "/v1/errors/releases") => ListReleases,
            ("POST", "/v1/errors/releases/{release}/files") => UploadReleaseFile,
            ("GET", "/v1/errors/releases/{release}/files") => ListReleaseFiles,
            ("DELETE", "/v1/errors/releases/{release}/files/{file_id}") => DeleteReleaseFile,
            ("GET", "/v1/errors/debug-files") => ListDebugFiles,
            ("DELETE", "/v1/errors/debug-files/{debug_id}") => DeleteDebugFiles,
            (
                "POST",
                "/api/0/organizations/{org}/releases/"
                | "/api/0/projects/{org}/{project}/releases/",
            ) => SentryNewRelease,
            ("GET", "/api/0/projects/{org}/{project}/releases/{version}/files/") => SentryListFiles,
            ("POST", "/api/0/projects/{org}/{project}/releases/{version}/files/") => {
                SentryUploadFile
            }
            ("DELETE", "/api/0/projects/{org}/{project}/releases/{version}/files/{file_id}/") => {
                SentryDeleteFile
            }
            ("GET", "/api/0/organizations/{org}/chunk-upload/") => SentryChunkOptions,
            ("POST", "/api/0/organizations/{org}/chunk-upload/") => UploadChunks,
            ("POST", "/api/0/organizations/{org}/artifactbundle/assemble/") => AssembleBundle,
            ("POST", "/v1/errors/comments/{error_group_id}") => AddComment,
            ("DELETE", "/v1/errors/comments/{error_group_id}/{comment_id}") => DeleteComment,
            ("PUT", "/v1/errors/comments/{error_group_id}/{comment_id}") => EditComment,
            ("DELETE", "/v1/errors/delete/{error_group_id}") => DeleteGroup,
            ("POST", "/v1/errors/merge") => MergeGroups,
            ("GET", "/v1/errors/hashes/{error_group_id}") => ListHashes,
            ("POST", "/v1/errors/unmerge/{error_group_id}") => Unmerge,
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
            ("POST", "/api/{project}/envelope/" | "/api/{project}/envelope") => SentryEnvelope,
            ("POST", "/api/{project}/store/" | "/api/{project}/store") => SentryStore,
            ("GET", "/api/embed/error-page/" | "/api/embed/error-page") => SentryReportDialog,
            ("POST", "/api/embed/error-page/" | "/api/embed/error-page") => SentryReportSubmit,
            ("GET", "/v1/settings/dsn") => GetDsn,
            ("GET", "/v1/errors/ingest_policy/get") => GetIngestPolicy,
            ("PUT", "/v1/errors/ingest_policy/set") => SetIngestPolicy,
            ("POST", "/api/v1/logs/report") => LogReport,
            ("GET", "/api/v1/logs/{id}") => LogGet,
            ("PUT", "/api/v1/logs/{id}/status") => TransitionWorkflow,
            ("POST", "/ingest/errors") => MiniApmIngest,
            ("POST", "/ingest/errors/batch") => MiniApmBatch,
            ("GET", "/health") => InsightsHealth,
            ("GET", "/api/errors") => QueryGroups,
            ("POST", "/api/errors") => ElsCreate,
            ("GET", "/api/errors/{id}") => ElsGet,
            ("DELETE", "/api/errors/{id}") => ElsDelete,
            ("PUT", "/api/errors/{id}/resolve") => ElsResolve,
            ("GET", "/api/stats") => GetStats,
            ("GET", "/api/analytics/trends") => GetTrends,
            ("GET", "/api/analytics/performance") => GetPerformance,
            ("GET", "/api/monitoring/services") => GetServices,
            ("GET", "/api/monitoring/metrics") => GetMetrics,
            ("GET", "/api/monitoring/uptime") => GetUptime,
            ("GET", "/v1/settings/policy") => GetPolicy,
            ("PUT", "/v1/settings/policy") => SetPolicy,
            ("GET", "/api/settings/integrations") => ListIntegrations,
            ("POST", "/api/settings/integrations") => SetIntegration,
            ("PUT", "/api/settings/integrations/{name}") => SetIntegration,
            ("DELETE", "/api/settings/integrations/{name}") => DeleteIntegration,
            ("POST", "/api/settings/integrations/{name}/test") => TestIntegration,
            ("GET", "/api/alerts/rules") => ListAlertRules,
            ("POST", "/api/alerts/rules") => CreateAlertRule,
            ("PUT", "/api/alerts/rules/{id}") => UpdateAlertRule,
            ("DELETE", "/api/alerts/rules/{id}") => DeleteAlertRule,
            ("GET", "/api/alerts/incidents") => ListIncidents,
            ("POST", "/api/alerts/incidents") => CreateIncident,
            ("PUT", "/api/alerts/incidents/{id}") => UpdateIncident,
            (
                "GET",
                "/" | "/ui/app.js" | "/ui/app.css" | "/docs" | "/docs/" | "/docs/{*rest}"
                | "/openapi.json",
            ) => WebPage,
            _ => panic!(
                "no matrix sample for REST route {m} {p}: add one in tests/api/auth_matrix.rs"
            ),
        },
    }
}

fn other_project(op: Op) -> OtherProject {
    use Op::*;
    match op {
        // Ids of the first project, or (integrations) a channel only the first project has.
        GetEvent | GetGroup | ListGroupEvents | Resolve | Unresolve | Ignore | Assign
        | ListComments | ListActivity | AddComment | DeleteComment | EditComment | DeleteGroup
        | DeleteReleaseFile | DeleteDebugFiles | SentryDeleteFile | MergeGroups | ListHashes
        | Unmerge | RevokeKey | GetProject | RenameProject | DeleteProject | TransitionWorkflow
        | LogGet | ElsGet | ElsDelete | ElsResolve | DeleteIntegration | TestIntegration
        | LogReport | UpdateAlertRule | DeleteAlertRule | UpdateIncident => OtherProject::NotFound,
        Invite | UpdateMember | RemoveMember | CreateProject => OtherProject::Forbidden,
        _ => OtherProject::Ok,
    }
}

/// The ids a call works on, made fresh where the call consumes them.
#[derive(Default, Clone)]
struct Target {
    event_id: String,
    group_id: String,
    /// A second group of the first project, which `MergeGroups` merges with `group_id`.
    merge_with: String,
    /// Grouping keys of `group_id` that `Unmerge` moves to a new group.
    unmerge: Vec<String>,
    key_id: String,
    member_id: String,
    project_id: String,
    invite_token: String,
    email: String,
    rule_id: String,
    incident_id: String,
    comment_id: String,
    /// A file of [`RELEASE`] in the first project, which `DeleteReleaseFile` deletes.
    file_id: String,
    /// A debug id with files in the first project, which `DeleteDebugFiles` deletes.
    debug_id: String,
}

/// One server with one credential per column of the matrix.
struct Fixture {
    app: TestApp,
    channel: Channel,
    home: String,
    /// An event and group of the first project, for the calls that do not consume them.
    event_id: String,
    group_id: String,
    /// An alert rule and an incident of the first project, for the updates.
    rule_id: String,
    incident_id: String,
    other_key: String,
    expired_key: String,
    revoked_key: String,
    scope_keys: Vec<(Scope, String)>,
    /// The DSN public keys of the first and the other project, and the first one's Sentry
    /// project number (the `{project}` of the Sentry ingest paths).
    dsn_key: String,
    other_dsn_key: String,
    sentry_project: String,
    seq: AtomicUsize,
}

/// The channel the matrix configures and removes (`{name}` of the integration routes). Only
/// the first project ever has it: the samples that set a channel set [`SET_CHANNEL`], so a key
/// of the other project never finds this one.
const CHANNEL: &str = "webhook";
const SET_CHANNEL: &str = "slack";
/// Nothing listens there: a test message fails fast and is recorded as undelivered.
const DEAD_URL: &str = "http://127.0.0.1:9/matrix";

/// The release whose files the matrix uploads, lists and deletes.
const RELEASE: &str = "matrix@1";
/// The smallest source map.
fn source_map() -> Value {
    json!({"version": 3, "sources": [], "names": [], "mappings": ""})
}

/// A rule as the Error Logging System document writes it.
fn alert_rule_body() -> Value {
    json!({
        "name": "High Error Rate",
        "condition": "error_count > threshold in time_window",
        "threshold": 50,
        "time_window": "5m",
        "notifications": ["email"],
        "enabled": true
    })
}

/// An incident as the Error Logging System document writes it.
fn incident_body() -> Value {
    json!({
        "title": "Database Connection Timeout",
        "severity": "critical",
        "description": "Connections to the primary database time out.",
        "assigned_to": "user-123"
    })
}

/// Creates an alert rule or an incident (`what`: `rules` or `incidents`) of the first project
/// with the owner key over REST; returns its id.
async fn make_alert(app: &TestApp, what: &str, body: Value) -> String {
    let r = app
        .send(
            app.authed(Method::POST, &format!("/api/alerts/{what}"))
                .json(&body),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "create {what} {body}: {}", r.text);
    s(&r.body["data"]["id"])
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
        let dsn = app.get_ok("/v1/settings/dsn").await;
        let other_dsn = app
            .send(
                app.anon(Method::GET, "/v1/settings/dsn")
                    .header("X-API-Key", &other_key),
            )
            .await;
        assert_eq!(other_dsn.status.as_u16(), 200, "dsn: {}", other_dsn.text);
        let other_dsn_key = s(&other_dsn.body["public_key"]);
        assert_ne!(s(&dsn["public_key"]), other_dsn_key);
        let (event_id, group_id) = app.capture_text("matrix boom").await;
        let rule_id = make_alert(&app, "rules", alert_rule_body()).await;
        let incident_id = make_alert(&app, "incidents", incident_body()).await;
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
            rule_id,
            incident_id,
            other_key,
            expired_key,
            revoked_key,
            scope_keys,
            dsn_key: s(&dsn["public_key"]),
            other_dsn_key,
            sentry_project: n(&dsn["project_id"]).to_string(),
            seq: AtomicUsize::new(0),
        }
    }

    fn next(&self) -> usize {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh comment on `group`, written with `key` when that key may write one (only its
    /// author, or an admin, deletes a comment; only its author edits it), else with the owner
    /// key.
    async fn comment_for(&self, group: &str, key: Option<&str>) -> String {
        let path = format!("/v1/errors/comments/{group}");
        let body = json!({"text": format!("to delete {}", self.next())});
        if let Some(key) = key {
            let rb = self.app.anon(Method::POST, &path).header("X-API-Key", key);
            let r = self.app.send(rb.json(&body)).await;
            if r.status.as_u16() == 201 {
                return s(&r.body["id"]);
            }
        }
        let r = self
            .app
            .send(self.app.authed(Method::POST, &path).json(&body))
            .await;
        assert_eq!(r.status.as_u16(), 201, "comment: {}", r.text);
        s(&r.body["id"])
    }

    /// A file of [`RELEASE`] in the first project, uploaded with the owner key; its id.
    async fn release_file(&self) -> String {
        let path = format!(
            "/v1/errors/releases/{RELEASE}/files?name=~/m{}.js.map",
            self.next()
        );
        let r = self
            .app
            .send(self.app.authed(Method::POST, &path).json(&source_map()))
            .await;
        assert_eq!(r.status.as_u16(), 201, "release file: {}", r.text);
        s(&r.body["id"])
    }

    /// Prepares what `op` works on, with the owner key.
    async fn target(&self, op: Op) -> Target {
        let app = &self.app;
        let mut t = Target {
            event_id: self.event_id.clone(),
            group_id: self.group_id.clone(),
            project_id: self.home.clone(),
            email: format!("person{}@example.com", self.next()),
            rule_id: self.rule_id.clone(),
            incident_id: self.incident_id.clone(),
            ..Target::default()
        };
        match op {
            // These consume their group (deleted, or moved on in the one-way workflow). The
            // fingerprint keeps each in a group of its own.
            Op::DeleteGroup | Op::ElsDelete | Op::TransitionWorkflow => {
                let b = app
                    .capture(json!({"message": "doomed", "fingerprint": ["matrix", self.next().to_string()]}))
                    .await;
                t.event_id = s(&b["event_id"]);
                t.group_id = s(&b["group_id"]);
            }
            // Merging consumes a group: two groups of their own.
            Op::MergeGroups => {
                for id in [&mut t.group_id, &mut t.merge_with] {
                    let b = app
                        .capture(json!({"message": "merged", "fingerprint": ["matrix", self.next().to_string()]}))
                        .await;
                    *id = s(&b["group_id"]);
                }
            }
            // Unmerging splits a group: two groups of their own, merged.
            Op::Unmerge => {
                let mut made = Vec::new();
                for _ in 0..2 {
                    let b = app
                        .capture(json!({"message": "unmerged", "fingerprint": ["matrix", self.next().to_string()]}))
                        .await;
                    made.push((s(&b["group_id"]), s(&b["fingerprint"])));
                }
                let r = app
                    .post_ok(
                        "/v1/errors/merge",
                        &json!({"error_group_ids": [made[0].0, made[1].0]}),
                    )
                    .await;
                t.group_id = s(&r["error_group"]["id"]);
                let moving = made
                    .iter()
                    .find(|(g, _)| *g != t.group_id)
                    .expect("merged away");
                t.unmerge = vec![moving.1.clone()];
            }
            Op::DeleteDebugFiles => {
                t.debug_id = uuid::Uuid::new_v4().to_string();
                crate::sourcemaps::assemble(
                    app,
                    &crate::sourcemaps::debug_id_bundle(&t.debug_id, "matrix"),
                    "",
                )
                .await;
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
            Op::DeleteIntegration | Op::TestIntegration => {
                let r = app
                    .send(
                        app.authed(
                            Method::PUT,
                            &format!("/api/settings/integrations/{CHANNEL}"),
                        )
                        .json(&json!({"config": {"url": DEAD_URL}})),
                    )
                    .await;
                assert_eq!(r.status.as_u16(), 200, "set {CHANNEL}: {}", r.text);
            }
            Op::DeleteAlertRule => {
                t.rule_id = make_alert(app, "rules", alert_rule_body()).await;
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

/// A Sentry event as SDKs send it, with a fresh id (Sentry ingest is idempotent per id).
fn sentry_event() -> Value {
    json!({
        "event_id": uuid::Uuid::new_v4().simple().to_string(),
        "message": "matrix sentry",
        "level": "error",
        "platform": "other",
    })
}

/// An envelope holding one event, as `/envelope/` and `CaptureEnvelope` take it.
fn sentry_envelope() -> Vec<u8> {
    let event = sentry_event();
    format!(
        "{}\n{}\n{event}\n",
        json!({"event_id": event["event_id"]}),
        json!({"type": "event"})
    )
    .into_bytes()
}

fn rest_body(op: Op, t: &Target) -> Option<Value> {
    Some(match op {
        Op::Capture => json!({"message": "matrix capture"}),
        Op::CaptureBatch => json!({"events": [{"message": "matrix batch"}]}),
        Op::CaptureMessage => json!({"text": "matrix message"}),
        Op::SubmitFeedback => json!({"comments": "matrix feedback"}),
        Op::Bulk => json!({"error_group_ids": [t.group_id], "action": "resolve"}),
        Op::Assign => json!({"assignee": null}),
        Op::AddComment => json!({"text": "seen in the matrix"}),
        Op::UploadReleaseFile => source_map(),
        Op::SentryNewRelease => json!({"version": RELEASE, "projects": ["default"]}),
        // Nothing uploaded: the answer is "not_found" (a 200).
        Op::AssembleBundle => json!({"checksum": "00", "chunks": ["00"], "version": RELEASE}),
        Op::EditComment => json!({"text": "edited in the matrix"}),
        Op::MergeGroups => json!({"error_group_ids": [t.group_id, t.merge_with]}),
        Op::Unmerge => json!({"hashes": t.unmerge}),
        Op::Export => json!({"format": "json"}),
        Op::SetRetention => json!({"days": 30}),
        Op::CreateKey => json!({"name": "made in the matrix", "permissions": ["read"]}),
        Op::Invite => json!({"email": t.email, "role": "viewer"}),
        Op::Accept => json!({"invite_token": t.invite_token}),
        Op::UpdateMember => json!({"role": "developer"}),
        Op::CreateProject | Op::RenameProject => json!({"name": "matrix project"}),
        Op::SentryStore => sentry_event(),
        // Keeps keyless loopback ingest off, so keyless ingest stays refused.
        Op::SetIngestPolicy => json!({"anonymous_loopback_ingest": false}),
        Op::TransitionWorkflow => json!({"status": "VERIFYING"}),
        // Names the first project: a key that cannot see it gets 404 (see `other_project`).
        Op::LogReport => json!({
            "project_id": t.project_id,
            "environment": "production",
            "level": "ERROR",
            "error": {
                "type": "ValueError",
                "message": "matrix log",
                "file_path": "apps/matrix.py",
                "line_number": 7,
                "stack_trace": ["Traceback (most recent call last):"]
            }
        }),
        Op::MiniApmIngest => miniapm_error(),
        Op::MiniApmBatch => json!({"errors": [miniapm_error()]}),
        Op::ElsCreate => json!({"level": "error", "message": "matrix els", "source": "matrix"}),
        Op::SetPolicy => json!({"rate_limits": {}, "scrub_fields": [], "allowed_origins": []}),
        // `name` is what POST needs; PUT names the channel in the path and ignores it.
        Op::SetIntegration => json!({"name": SET_CHANNEL, "config": {"webhook_url": DEAD_URL}}),
        Op::CreateAlertRule => alert_rule_body(),
        Op::UpdateAlertRule => json!({"threshold": 100, "time_window": "10m"}),
        Op::CreateIncident => incident_body(),
        Op::UpdateIncident => json!({"status": "investigating"}),
        _ => return None,
    })
}

fn miniapm_error() -> Value {
    json!({
        "exception_class": "Matrix::Error",
        "message": "matrix miniapm",
        "backtrace": ["app/matrix.rb:1:in `call`"],
        "fingerprint": "matrix"
    })
}

/// The Error Logging System dialect: its own success and error envelopes.
fn is_els(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        InsightsHealth
            | QueryGroups
            | ElsCreate
            | ElsGet
            | ElsDelete
            | ElsResolve
            | GetStats
            | GetTrends
            | GetPerformance
            | GetServices
            | GetMetrics
            | GetUptime
            | ListAlertRules
            | CreateAlertRule
            | UpdateAlertRule
            | DeleteAlertRule
            | ListIncidents
            | CreateIncident
            | UpdateIncident
    )
}

/// Whether a 2xx answer has the documented status and shape of the route's success.
fn is_success(op: Op, resp: &Resp) -> bool {
    let status = resp.status.as_u16();
    match op {
        Op::MiniApmIngest => status == 202 && resp.text.is_empty(),
        Op::MiniApmBatch => status == 202,
        Op::SentryEnvelope | Op::SentryStore => {
            status == 200 && resp.body["id"].as_str().is_some_and(|id| id.len() == 32)
        }
        Op::RevokeKey
        | Op::RemoveMember
        | Op::ElsDelete
        | Op::DeleteIntegration
        | Op::DeleteAlertRule
        | Op::SentryDeleteFile => status == 204,
        Op::InsightsHealth | Op::WebPage | Op::SentryReportDialog | Op::SentryReportSubmit => {
            status == 200
        }
        Op::ElsCreate => status == 201 && resp.body["status"] == "success",
        Op::CreateAlertRule | Op::CreateIncident => {
            status == 201
                && resp.body["status"] == "success"
                && resp.body["data"]["id"].as_str().is_some()
        }
        _ if is_els(op) => status == 200 && resp.body["status"] == "success",
        _ => (200..=299).contains(&status),
    }
}

/// What a REST answer came to. Errors must come in the route's documented shape: seed-003
/// `{"error": {"code": ...}}`, or the Error Logging System's `{"error": "...", "status": "error"}`.
fn rest_outcome(op: Op, resp: &Resp) -> Outcome {
    let body = &resp.body;
    let error_is = |code: &str| {
        if is_els(op) {
            body["status"] == "error" && body["error"].as_str().is_some_and(|m| !m.is_empty())
        } else {
            body["error"]["code"] == code
        }
    };
    match resp.status.as_u16() {
        200..=299 if is_success(op, resp) => Outcome::Ok,
        401 if error_is("UNAUTHORIZED") => Outcome::Unauthenticated,
        403 if error_is("FORBIDDEN") => Outcome::Forbidden,
        404 if error_is("NOT_FOUND") => Outcome::NotFound,
        status => Outcome::Other(format!("{status} {}", resp.text)),
    }
}

async fn call_rest(fx: &Fixture, r: &Route, op: Op, t: &Target, cred: Cred<'_>) -> Outcome {
    let id = match op {
        Op::RevokeKey => &t.key_id,
        Op::UpdateMember | Op::RemoveMember => &t.member_id,
        Op::UpdateAlertRule | Op::DeleteAlertRule => &t.rule_id,
        Op::UpdateIncident => &t.incident_id,
        _ => &t.group_id,
    };
    let channel = if op == Op::SetIntegration {
        SET_CHANNEL
    } else {
        CHANNEL
    };
    let mut path = r
        .path
        .replace("{event_id}", &t.event_id)
        .replace("{error_group_id}", &t.group_id)
        .replace("{comment_id}", &t.comment_id)
        .replace("{release}", RELEASE)
        .replace("{version}", RELEASE)
        .replace("{org}", "faultline")
        .replace("{file_id}", &t.file_id)
        .replace("{debug_id}", &t.debug_id)
        .replace("{project_id}", &t.project_id)
        .replace("{project}", &fx.sentry_project)
        .replace("{name}", channel)
        .replace("{id}", id)
        .replace("{*rest}", "swagger-ui.css");
    if op == Op::SearchEvents {
        path.push_str("?q=boom");
    }
    if op == Op::UploadReleaseFile {
        path.push_str("?name=~/matrix.js.map");
    }
    // Browser SDKs put the DSN key in the query; the others in X-Sentry-Auth. Both are used.
    let dsn_in_query = op == Op::SentryStore;
    if let (true, Some(k)) = (dsn_in_query, cred.dsn_key()) {
        path = format!("{path}?sentry_key={k}&sentry_version=7");
    }
    // The crash-report dialog's query names the event and the whole DSN (with the DSN key
    // when that is the credential).
    if matches!(op, Op::SentryReportDialog | Op::SentryReportSubmit) {
        let user = cred.dsn_key().map(|k| format!("{k}@")).unwrap_or_default();
        let dsn = format!("http://{user}127.0.0.1/{}", fx.sentry_project);
        path = format!(
            "{path}?eventId=9ec79c33ec9942ab8353589fcb2e04dc&dsn={}",
            crate::helpers::enc(&dsn)
        );
    }
    let method = Method::from_bytes(r.method.as_bytes()).expect("method");
    let mut rb = fx.app.anon(method, &path);
    match cred {
        Cred::Key(k) => rb = rb.header("X-API-Key", k),
        Cred::Dsn(k) if !dsn_in_query => {
            rb = rb.header(
                "X-Sentry-Auth",
                format!("Sentry sentry_key={k}, sentry_version=7"),
            );
        }
        _ => {}
    }
    if op == Op::UploadChunks {
        let body = "--matrix\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c\"\r\n\
                    Content-Type: application/octet-stream\r\n\r\nmatrix chunk\r\n--matrix--\r\n";
        rb = rb
            .header("Content-Type", "multipart/form-data; boundary=matrix")
            .body(body);
    } else if op == Op::SentryUploadFile {
        // sentry-cli's form: the file and its name.
        let body = format!(
            "--matrix\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n~/matrix.js.map\r\n\
             --matrix\r\nContent-Disposition: form-data; name=\"file\"; filename=\"matrix.js.map\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{}\r\n--matrix--\r\n",
            source_map()
        );
        rb = rb
            .header("Content-Type", "multipart/form-data; boundary=matrix")
            .body(body);
    } else if op == Op::SentryReportSubmit {
        rb = rb
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("name=Matrix&email=matrix%40example.com&comments=from+the+matrix");
    } else if op == Op::SentryEnvelope {
        rb = rb
            .header("Content-Type", "application/x-sentry-envelope")
            .body(sentry_envelope());
    } else if let Some(b) = rest_body(op, t) {
        rb = rb.json(&b);
    }
    let resp = fx.app.send(rb).await;
    rest_outcome(op, &resp)
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

async fn call_grpc(fx: &Fixture, op: Op, t: &Target, cred: Cred<'_>) -> Outcome {
    let key = cred.api_key();
    let ch = fx.channel.clone();
    let mut capture = CaptureServiceClient::new(ch.clone());
    let mut groups = GroupServiceClient::new(ch.clone());
    let mut settings = SettingsServiceClient::new(ch.clone());
    let mut projects = ProjectServiceClient::new(ch.clone());
    let mut insights = InsightsServiceClient::new(ch.clone());
    let mut alerts = AlertServiceClient::new(ch.clone());
    let mut releases = ReleaseServiceClient::new(ch.clone());
    let group_id = t.group_id.clone();
    // One unary call with the caller's API key, and what it came to.
    macro_rules! rpc {
        ($client:ident, $method:ident, $msg:expr) => {
            grpc_outcome($client.$method(grpc_req($msg, key)).await)
        };
    }
    match op {
        Op::Capture => rpc!(
            capture,
            capture,
            pb::CaptureRequest {
                message: "matrix capture".into(),
                ..Default::default()
            }
        ),
        Op::SubmitFeedback => rpc!(
            capture,
            submit_feedback,
            pb::SubmitFeedbackRequest {
                comments: "matrix feedback".into(),
                ..Default::default()
            }
        ),
        Op::ListFeedback => rpc!(groups, list_feedback, pb::ListFeedbackRequest::default()),
        Op::CaptureMessage => rpc!(
            capture,
            capture_message,
            pb::CaptureMessageRequest {
                text: "matrix message".into(),
                ..Default::default()
            }
        ),
        Op::CaptureBatch => rpc!(
            capture,
            capture_batch,
            pb::CaptureBatchRequest {
                events: vec![pb::CaptureRequest {
                    message: "matrix batch".into(),
                    ..Default::default()
                }],
            }
        ),
        Op::ListEvents => rpc!(groups, list_events, pb::ListEventsRequest::default()),
        Op::SearchEvents => rpc!(
            groups,
            search_events,
            pb::SearchEventsRequest {
                q: "boom".into(),
                ..Default::default()
            }
        ),
        Op::GetEvent => rpc!(
            groups,
            get_event,
            pb::GetEventRequest {
                event_id: t.event_id.clone(),
            }
        ),
        Op::ListGroups => rpc!(groups, list_groups, pb::ListGroupsRequest::default()),
        Op::GetGroup => rpc!(groups, get_group, pb::GetGroupRequest { group_id }),
        Op::ListGroupEvents => rpc!(
            groups,
            list_group_events,
            pb::ListGroupEventsRequest {
                group_id,
                ..Default::default()
            }
        ),
        Op::Resolve => rpc!(
            groups,
            resolve_group,
            pb::ResolveGroupRequest {
                group_id,
                ..Default::default()
            }
        ),
        Op::Unresolve => rpc!(
            groups,
            unresolve_group,
            pb::UnresolveGroupRequest { group_id }
        ),
        Op::Ignore => rpc!(
            groups,
            ignore_group,
            pb::IgnoreGroupRequest {
                group_id,
                ..Default::default()
            }
        ),
        Op::Assign => rpc!(
            groups,
            assign_group,
            pb::AssignGroupRequest {
                group_id,
                ..Default::default()
            }
        ),
        Op::ListReleases => rpc!(groups, list_releases, pb::ListReleasesRequest { limit: 5 }),
        Op::ListComments => rpc!(
            groups,
            list_group_comments,
            pb::ListGroupCommentsRequest { group_id }
        ),
        Op::ListActivity => rpc!(
            groups,
            list_group_activity,
            pb::ListGroupActivityRequest {
                group_id,
                limit: 10
            }
        ),
        Op::AddComment => rpc!(
            groups,
            add_group_comment,
            pb::AddGroupCommentRequest {
                group_id,
                text: "seen in the matrix".into(),
            }
        ),
        Op::EditComment => rpc!(
            groups,
            update_group_comment,
            pb::UpdateGroupCommentRequest {
                group_id,
                comment_id: t.comment_id.clone(),
                text: "edited in the matrix".into(),
            }
        ),
        Op::DeleteComment => rpc!(
            groups,
            delete_group_comment,
            pb::DeleteGroupCommentRequest {
                group_id,
                comment_id: t.comment_id.clone(),
            }
        ),
        Op::UploadReleaseFile => rpc!(
            releases,
            upload_release_file,
            pb::UploadReleaseFileRequest {
                release: RELEASE.into(),
                name: "~/matrix.js.map".into(),
                content: source_map().to_string().into_bytes(),
            }
        ),
        Op::ListReleaseFiles => rpc!(
            releases,
            list_release_files,
            pb::ListReleaseFilesRequest {
                release: RELEASE.into(),
            }
        ),
        Op::DeleteReleaseFile => rpc!(
            releases,
            delete_release_file,
            pb::DeleteReleaseFileRequest {
                release: RELEASE.into(),
                id: t.file_id.clone(),
            }
        ),
        Op::ListDebugFiles => rpc!(
            releases,
            list_debug_files,
            pb::ListDebugFilesRequest::default()
        ),
        Op::DeleteDebugFiles => rpc!(
            releases,
            delete_debug_files,
            pb::DeleteDebugFilesRequest {
                debug_id: t.debug_id.clone(),
            }
        ),
        Op::UploadChunks => rpc!(
            releases,
            upload_chunks,
            pb::UploadChunksRequest {
                chunks: vec![b"matrix chunk".to_vec()],
            }
        ),
        Op::AssembleBundle => rpc!(
            releases,
            assemble_bundle,
            pb::AssembleBundleRequest {
                checksum: "00".into(),
                chunks: vec!["00".into()],
                release: RELEASE.into(),
            }
        ),
        Op::DeleteGroup => rpc!(groups, delete_group, pb::DeleteGroupRequest { group_id }),
        Op::MergeGroups => rpc!(
            groups,
            merge_groups,
            pb::MergeGroupsRequest {
                group_ids: vec![group_id, t.merge_with.clone()],
            }
        ),
        Op::ListHashes => rpc!(
            groups,
            list_group_hashes,
            pb::ListGroupHashesRequest { group_id }
        ),
        Op::Unmerge => rpc!(
            groups,
            unmerge_group,
            pb::UnmergeGroupRequest {
                group_id,
                hashes: t.unmerge.clone(),
            }
        ),
        Op::Bulk => rpc!(
            groups,
            bulk_update_groups,
            pb::BulkUpdateGroupsRequest {
                group_ids: vec![group_id],
                action: pb::BulkAction::Resolve as i32,
                ..Default::default()
            }
        ),
        Op::Export => rpc!(groups, export_events, pb::ExportEventsRequest::default()),
        Op::GetRetention => rpc!(settings, get_retention, pb::GetRetentionRequest {}),
        Op::SetRetention => rpc!(
            settings,
            set_retention,
            pb::SetRetentionRequest {
                days: 30,
                ..Default::default()
            }
        ),
        Op::CreateKey => rpc!(
            settings,
            create_api_key,
            pb::CreateApiKeyRequest {
                name: "made in the matrix".into(),
                permissions: vec!["read".into()],
                ..Default::default()
            }
        ),
        Op::ListKeys => rpc!(settings, list_api_keys, pb::ListApiKeysRequest {}),
        Op::RevokeKey => rpc!(
            settings,
            revoke_api_key,
            pb::RevokeApiKeyRequest {
                id: t.key_id.clone(),
            }
        ),
        Op::ListMembers => rpc!(settings, list_members, pb::ListMembersRequest {}),
        Op::Invite => rpc!(
            settings,
            invite_member,
            pb::InviteMemberRequest {
                email: t.email.clone(),
                role: pb::Role::Viewer as i32,
                name: String::new(),
            }
        ),
        Op::Accept => rpc!(
            settings,
            accept_invite,
            pb::AcceptInviteRequest {
                invite_token: t.invite_token.clone(),
                name: String::new(),
            }
        ),
        Op::UpdateMember => rpc!(
            settings,
            update_member,
            pb::UpdateMemberRequest {
                id: t.member_id.clone(),
                role: pb::Role::Developer as i32,
            }
        ),
        Op::RemoveMember => rpc!(
            settings,
            remove_member,
            pb::RemoveMemberRequest {
                id: t.member_id.clone(),
            }
        ),
        Op::AuditLog => rpc!(settings, list_audit_log, pb::ListAuditLogRequest::default()),
        Op::CreateProject => rpc!(
            projects,
            create_project,
            pb::CreateProjectRequest {
                name: "matrix project".into(),
            }
        ),
        Op::ListProjects => rpc!(projects, list_projects, pb::ListProjectsRequest {}),
        Op::GetProject => rpc!(
            projects,
            get_project,
            pb::GetProjectRequest {
                project_id: t.project_id.clone(),
            }
        ),
        Op::RenameProject => rpc!(
            projects,
            rename_project,
            pb::RenameProjectRequest {
                project_id: t.project_id.clone(),
                name: "matrix project".into(),
            }
        ),
        Op::DeleteProject => rpc!(
            projects,
            delete_project,
            pb::DeleteProjectRequest {
                project_id: t.project_id.clone(),
            }
        ),
        Op::SentryEnvelope => {
            let req = pb::CaptureEnvelopeRequest {
                body: sentry_envelope(),
                format: pb::SentryPayloadFormat::Envelope as i32,
                project: fx.sentry_project.clone(),
                sentry_key: cred.dsn_key().unwrap_or_default().to_owned(),
                ..Default::default()
            };
            rpc!(capture, capture_envelope, req)
        }
        Op::GetDsn => rpc!(
            settings,
            get_dsn,
            pb::GetDsnRequest {
                host: "errors.example.com".into(),
            }
        ),
        Op::GetIngestPolicy => rpc!(settings, get_ingest_policy, pb::GetIngestPolicyRequest {}),
        Op::SetIngestPolicy => rpc!(
            settings,
            set_ingest_policy,
            pb::SetIngestPolicyRequest {
                anonymous_loopback_ingest: false,
            }
        ),
        Op::TransitionWorkflow => rpc!(
            groups,
            transition_workflow,
            pb::TransitionWorkflowRequest {
                group_id,
                stage: pb::WorkflowStage::Verifying as i32,
            }
        ),
        Op::InsightsHealth => rpc!(insights, get_health, pb::GetHealthRequest {}),
        Op::QueryGroups => rpc!(insights, query_groups, pb::QueryGroupsRequest::default()),
        Op::GetStats => rpc!(insights, get_stats, pb::GetStatsRequest {}),
        Op::GetTrends => rpc!(insights, get_trends, pb::GetTrendsRequest::default()),
        Op::GetPerformance => rpc!(insights, get_performance, pb::GetPerformanceRequest {}),
        Op::GetServices => rpc!(insights, get_services, pb::GetServicesRequest {}),
        Op::GetMetrics => rpc!(insights, get_metrics, pb::GetMetricsRequest::default()),
        Op::GetUptime => rpc!(insights, get_uptime, pb::GetUptimeRequest {}),
        Op::GetPolicy => rpc!(settings, get_project_policy, pb::GetProjectPolicyRequest {}),
        Op::SetPolicy => rpc!(
            settings,
            set_project_policy,
            pb::SetProjectPolicyRequest {
                policy: Some(pb::ProjectPolicy::default()),
            }
        ),
        Op::ListIntegrations => rpc!(settings, list_integrations, pb::ListIntegrationsRequest {}),
        Op::SetIntegration => rpc!(
            settings,
            set_integration,
            pb::SetIntegrationRequest {
                config: Some(pb::set_integration_request::Config::Slack(
                    pb::SlackConfig {
                        webhook_url: DEAD_URL.into(),
                        channel: String::new(),
                    }
                )),
            }
        ),
        Op::DeleteIntegration => rpc!(
            settings,
            delete_integration,
            pb::DeleteIntegrationRequest {
                kind: pb::IntegrationKind::Webhook as i32,
            }
        ),
        Op::TestIntegration => rpc!(
            settings,
            test_integration,
            pb::TestIntegrationRequest {
                kind: pb::IntegrationKind::Webhook as i32,
            }
        ),
        Op::ListAlertRules => rpc!(alerts, list_alert_rules, pb::ListAlertRulesRequest {}),
        Op::CreateAlertRule => rpc!(
            alerts,
            create_alert_rule,
            pb::CreateAlertRuleRequest {
                rule: Some(pb::AlertRuleFields {
                    name: Some("High Error Rate".into()),
                    condition: Some("error_count > threshold in time_window".into()),
                    threshold: Some(50),
                    time_window: Some("5m".into()),
                    notifications: Some(pb::ChannelList {
                        channels: vec!["email".into()],
                    }),
                    enabled: Some(true),
                    severity: None,
                    environment: None,
                    level: None,
                    tags: None,
                }),
            }
        ),
        Op::UpdateAlertRule => rpc!(
            alerts,
            update_alert_rule,
            pb::UpdateAlertRuleRequest {
                id: t.rule_id.clone(),
                rule: Some(pb::AlertRuleFields {
                    threshold: Some(100),
                    time_window: Some("10m".into()),
                    ..Default::default()
                }),
            }
        ),
        Op::DeleteAlertRule => rpc!(
            alerts,
            delete_alert_rule,
            pb::DeleteAlertRuleRequest {
                id: t.rule_id.clone(),
            }
        ),
        Op::ListIncidents => rpc!(alerts, list_incidents, pb::ListIncidentsRequest::default()),
        Op::CreateIncident => rpc!(
            alerts,
            create_incident,
            pb::CreateIncidentRequest {
                incident: Some(pb::IncidentFields {
                    title: Some("Database Connection Timeout".into()),
                    severity: Some("critical".into()),
                    description: Some("Connections to the primary database time out.".into()),
                    assigned_to: Some("user-123".into()),
                    status: None,
                }),
            }
        ),
        Op::UpdateIncident => rpc!(
            alerts,
            update_incident,
            pb::UpdateIncidentRequest {
                id: t.incident_id.clone(),
                incident: Some(pb::IncidentFields {
                    status: Some("investigating".into()),
                    ..Default::default()
                }),
            }
        ),
        Op::SentryStore
        | Op::LogReport
        | Op::LogGet
        | Op::MiniApmIngest
        | Op::MiniApmBatch
        | Op::ElsCreate
        | Op::ElsGet
        | Op::ElsDelete
        | Op::ElsResolve
        | Op::SentryNewRelease
        | Op::SentryListFiles
        | Op::SentryUploadFile
        | Op::SentryDeleteFile
        | Op::SentryChunkOptions
        | Op::WebPage
        | Op::SentryReportDialog
        | Op::SentryReportSubmit => unreachable!("{op:?} is a REST-only route"),
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

async fn call(fx: &Fixture, r: &Route, cred: Cred<'_>) -> Outcome {
    let op = op_of(r);
    let mut t = fx.target(op).await;
    if matches!(op, Op::DeleteComment | Op::EditComment) {
        t.comment_id = fx.comment_for(&t.group_id, cred.api_key()).await;
    }
    if matches!(op, Op::DeleteReleaseFile | Op::SentryDeleteFile) {
        t.file_id = fx.release_file().await;
    }
    match r.transport {
        Transport::Rest => call_rest(fx, r, op, &t, cred).await,
        Transport::Grpc => call_grpc(fx, op, &t, cred).await,
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
        let (needed, other) = match r.need {
            Need::Public => {
                check("no key", Outcome::Ok, call(&fx, r, Cred::None).await);
                continue;
            }
            // The other project's key names its own project, not the one in the path.
            Need::SentryKey => (Scope::Ingest, Outcome::Forbidden),
            Need::Scope(needed) => (
                needed,
                match other_project(op_of(r)) {
                    OtherProject::Ok => Outcome::Ok,
                    OtherProject::NotFound => Outcome::NotFound,
                    OtherProject::Forbidden => Outcome::Forbidden,
                },
            ),
        };
        let unauthenticated = [
            ("no key", Cred::None),
            ("an expired key", Cred::Key(&fx.expired_key)),
            ("a revoked key", Cred::Key(&fx.revoked_key)),
            ("an unknown key", Cred::Key("flt_not-a-key")),
            // The DSN public key is published in browser code: it is never an API key.
            ("the DSN key as an API key", Cred::Key(&fx.dsn_key)),
        ];
        for (who, cred) in unauthenticated {
            check(who, Outcome::Unauthenticated, call(&fx, r, cred).await);
        }
        check(
            "another project's key",
            other,
            call(&fx, r, Cred::Key(&fx.other_key)).await,
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
                call(&fx, r, Cred::Key(key)).await,
            );
        }
        if r.need == Need::SentryKey {
            let dsn_keys = [
                ("the project's DSN key", Outcome::Ok, fx.dsn_key.as_str()),
                (
                    "another project's DSN key",
                    Outcome::Forbidden,
                    &fx.other_dsn_key,
                ),
                (
                    "an unknown DSN key",
                    Outcome::Unauthenticated,
                    "0123456789abcdef0123456789abcdef",
                ),
            ];
            for (who, want, key) in dsn_keys {
                check(who, want, call(&fx, r, Cred::Dsn(key)).await);
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
