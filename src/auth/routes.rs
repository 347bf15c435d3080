//! The one table of what every route needs, on both transports, and the middlewares that
//! enforce it before a handler runs. Handlers still call [`super::require`] for the principal;
//! the matrix test (`tests/api/auth_matrix.rs`) walks this table and checks both agree.
//!
//! They also apply the project selector: a key that may reach every project works on the one
//! named by the `X-Faultline-Project` header (gRPC: `x-faultline-project` metadata) instead of
//! its own; a restricted key naming another project gets 404.
//!
//! Adding a route is one line here. A REST route that is on the router but not in this table
//! is refused (fail closed, logged as an error); every gRPC method in the served descriptor
//! set must have a line (checked by a unit test below).

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{Authn, Principal, Scope, require};
use crate::{error::Error, store::Store};

/// The header (and gRPC metadata key) that selects the project a request works on.
pub const PROJECT_HEADER: &str = "x-faultline-project";

/// What a route asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone (health, reflection, accepting an invite with its token).
    Public,
    /// A valid key holding this scope.
    Scope(Scope),
    /// Sentry ingest: the handler authenticates the project's DSN public key (from
    /// `X-Sentry-Auth`, `?sentry_key=` or the envelope header) or an API key with the ingest
    /// scope, and checks it against the project in the path.
    SentryKey,
}

/// Which door a route is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    Rest,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub transport: Transport,
    /// HTTP method of a REST route; "POST" for gRPC.
    pub method: &'static str,
    /// gRPC: `/package.Service/Method`. REST: the axum path template, e.g. `/v1/errors/get/{event_id}`.
    pub path: &'static str,
    pub need: Need,
}

const fn grpc(path: &'static str, need: Need) -> Route {
    Route {
        transport: Transport::Grpc,
        method: "POST",
        path,
        need,
    }
}

const fn rest(method: &'static str, path: &'static str, need: Need) -> Route {
    Route {
        transport: Transport::Rest,
        method,
        path,
        need,
    }
}

const PUBLIC: Need = Need::Public;
const INGEST: Need = Need::Scope(Scope::Ingest);
const READ: Need = Need::Scope(Scope::Read);
const WRITE: Need = Need::Scope(Scope::Write);
const ADMIN: Need = Need::Scope(Scope::Admin);
const OWNER: Need = Need::Scope(Scope::Owner);
const SENTRY: Need = Need::SentryKey;

/// Every route of the server and what it needs.
pub static ROUTES: &[Route] = &[
    // gRPC infrastructure
    grpc("/grpc.health.v1.Health/Check", PUBLIC),
    grpc("/grpc.health.v1.Health/Watch", PUBLIC),
    grpc(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        PUBLIC,
    ),
    grpc(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        PUBLIC,
    ),
    // CaptureService
    grpc("/faultline.v1.CaptureService/Capture", INGEST),
    grpc("/faultline.v1.CaptureService/CaptureMessage", INGEST),
    grpc("/faultline.v1.CaptureService/CaptureBatch", INGEST),
    rest("POST", "/v1/errors/capture", INGEST),
    rest("POST", "/v1/errors/capture/batch", INGEST),
    rest("POST", "/v1/errors/message", INGEST),
    grpc("/faultline.v1.CaptureService/SubmitFeedback", INGEST),
    rest("POST", "/v1/errors/feedback", INGEST),
    // GroupService
    grpc("/faultline.v1.GroupService/ListEvents", READ),
    grpc("/faultline.v1.GroupService/SearchEvents", READ),
    grpc("/faultline.v1.GroupService/GetEvent", READ),
    grpc("/faultline.v1.GroupService/ListGroups", READ),
    grpc("/faultline.v1.GroupService/GetGroup", READ),
    grpc("/faultline.v1.GroupService/ListGroupEvents", READ),
    grpc("/faultline.v1.GroupService/ResolveGroup", WRITE),
    grpc("/faultline.v1.GroupService/UnresolveGroup", WRITE),
    grpc("/faultline.v1.GroupService/IgnoreGroup", WRITE),
    grpc("/faultline.v1.GroupService/AssignGroup", WRITE),
    grpc("/faultline.v1.GroupService/ListReleases", READ),
    grpc("/faultline.v1.ReleaseService/UploadReleaseFile", WRITE),
    grpc("/faultline.v1.ReleaseService/ListReleaseFiles", READ),
    grpc("/faultline.v1.ReleaseService/DeleteReleaseFile", WRITE),
    grpc("/faultline.v1.ReleaseService/ListDebugFiles", READ),
    grpc("/faultline.v1.ReleaseService/DeleteDebugFiles", WRITE),
    grpc("/faultline.v1.ReleaseService/UploadChunks", WRITE),
    grpc("/faultline.v1.ReleaseService/AssembleBundle", WRITE),
    rest("POST", "/v1/errors/releases/{release}/files", WRITE),
    rest("GET", "/v1/errors/releases/{release}/files", READ),
    rest(
        "DELETE",
        "/v1/errors/releases/{release}/files/{file_id}",
        WRITE,
    ),
    rest("GET", "/v1/errors/debug-files", READ),
    rest("DELETE", "/v1/errors/debug-files/{debug_id}", WRITE),
    // Sentry's release-file API (sentry-cli 2). Creating a release stores nothing (it reads
    // the release, if known): `read`.
    rest("POST", "/api/0/organizations/{org}/releases/", READ),
    rest("POST", "/api/0/projects/{org}/{project}/releases/", READ),
    rest(
        "GET",
        "/api/0/projects/{org}/{project}/releases/{version}/files/",
        READ,
    ),
    rest(
        "POST",
        "/api/0/projects/{org}/{project}/releases/{version}/files/",
        WRITE,
    ),
    rest(
        "DELETE",
        "/api/0/projects/{org}/{project}/releases/{version}/files/{file_id}/",
        WRITE,
    ),
    rest("GET", "/api/0/organizations/{org}/chunk-upload/", READ),
    rest("POST", "/api/0/organizations/{org}/chunk-upload/", WRITE),
    rest(
        "POST",
        "/api/0/organizations/{org}/artifactbundle/assemble/",
        WRITE,
    ),
    grpc("/faultline.v1.GroupService/ListGroupComments", READ),
    grpc("/faultline.v1.GroupService/ListGroupActivity", READ),
    grpc("/faultline.v1.GroupService/UpdateGroupComment", WRITE),
    grpc("/faultline.v1.GroupService/AddGroupComment", WRITE),
    grpc("/faultline.v1.GroupService/DeleteGroupComment", WRITE),
    grpc("/faultline.v1.GroupService/DeleteGroup", WRITE),
    grpc("/faultline.v1.GroupService/MergeGroups", WRITE),
    grpc("/faultline.v1.GroupService/ListGroupHashes", READ),
    grpc("/faultline.v1.GroupService/ListFeedback", READ),
    rest("GET", "/v1/errors/feedback", READ),
    grpc("/faultline.v1.GroupService/UnmergeGroup", WRITE),
    grpc("/faultline.v1.GroupService/BulkUpdateGroups", WRITE),
    grpc("/faultline.v1.GroupService/ExportEvents", READ),
    rest("GET", "/v1/errors/list", READ),
    rest("GET", "/v1/errors/search", READ),
    rest("GET", "/v1/errors/get/{event_id}", READ),
    rest("GET", "/v1/errors/groups", READ),
    rest("GET", "/v1/errors/group_detail/{error_group_id}", READ),
    rest("GET", "/v1/errors/events/{error_group_id}", READ),
    rest("POST", "/v1/errors/resolve/{error_group_id}", WRITE),
    rest("POST", "/v1/errors/unresolve/{error_group_id}", WRITE),
    rest("POST", "/v1/errors/ignore/{error_group_id}", WRITE),
    rest("POST", "/v1/errors/assign/{error_group_id}", WRITE),
    rest("GET", "/v1/errors/releases", READ),
    rest("GET", "/v1/errors/comments/{error_group_id}", READ),
    rest("POST", "/v1/errors/comments/{error_group_id}", WRITE),
    rest(
        "PUT",
        "/v1/errors/comments/{error_group_id}/{comment_id}",
        WRITE,
    ),
    rest(
        "DELETE",
        "/v1/errors/comments/{error_group_id}/{comment_id}",
        WRITE,
    ),
    rest("GET", "/v1/errors/activity/{error_group_id}", READ),
    rest("DELETE", "/v1/errors/delete/{error_group_id}", WRITE),
    rest("POST", "/v1/errors/merge", WRITE),
    rest("GET", "/v1/errors/hashes/{error_group_id}", READ),
    rest("POST", "/v1/errors/unmerge/{error_group_id}", WRITE),
    rest("POST", "/v1/errors/bulk", WRITE),
    rest("POST", "/v1/errors/export", READ),
    // SettingsService: retention
    grpc("/faultline.v1.SettingsService/GetRetention", READ),
    grpc("/faultline.v1.SettingsService/SetRetention", ADMIN),
    rest("GET", "/v1/errors/retention/get", READ),
    rest("PUT", "/v1/errors/retention/set", ADMIN),
    // SettingsService: API keys
    grpc("/faultline.v1.SettingsService/CreateApiKey", ADMIN),
    grpc("/faultline.v1.SettingsService/ListApiKeys", ADMIN),
    grpc("/faultline.v1.SettingsService/RevokeApiKey", ADMIN),
    rest("POST", "/api/settings/api-keys", ADMIN),
    rest("GET", "/api/settings/api-keys", ADMIN),
    rest("DELETE", "/api/settings/api-keys/{id}", ADMIN),
    // SettingsService: team
    grpc("/faultline.v1.SettingsService/ListMembers", READ),
    grpc("/faultline.v1.SettingsService/InviteMember", ADMIN),
    grpc("/faultline.v1.SettingsService/AcceptInvite", PUBLIC),
    grpc("/faultline.v1.SettingsService/UpdateMember", ADMIN),
    grpc("/faultline.v1.SettingsService/RemoveMember", ADMIN),
    rest("GET", "/api/settings/team", READ),
    rest("POST", "/api/settings/team/invite", ADMIN),
    rest("POST", "/api/settings/team/invite/accept", PUBLIC),
    rest("PUT", "/api/settings/team/{id}", ADMIN),
    rest("DELETE", "/api/settings/team/{id}", ADMIN),
    // SettingsService: audit log
    grpc("/faultline.v1.SettingsService/ListAuditLog", ADMIN),
    rest("GET", "/api/settings/audit-log", ADMIN),
    // ProjectService
    grpc("/faultline.v1.ProjectService/CreateProject", ADMIN),
    grpc("/faultline.v1.ProjectService/ListProjects", READ),
    grpc("/faultline.v1.ProjectService/GetProject", READ),
    grpc("/faultline.v1.ProjectService/RenameProject", ADMIN),
    grpc("/faultline.v1.ProjectService/DeleteProject", OWNER),
    rest("POST", "/v1/projects/create", ADMIN),
    rest("GET", "/v1/projects/list", READ),
    rest("GET", "/v1/projects/get/{project_id}", READ),
    rest("PUT", "/v1/projects/rename/{project_id}", ADMIN),
    rest("DELETE", "/v1/projects/delete/{project_id}", OWNER),
    // Sentry protocol (CaptureService.CaptureEnvelope; SettingsService.GetDsn)
    grpc("/faultline.v1.CaptureService/CaptureEnvelope", SENTRY),
    rest("POST", "/api/{project}/envelope/", SENTRY),
    rest("POST", "/api/{project}/envelope", SENTRY),
    rest("POST", "/api/{project}/store/", SENTRY),
    rest("POST", "/api/{project}/store", SENTRY),
    // The crash-report dialog: its script is public (no data); the form it posts carries the
    // DSN in the query.
    rest("GET", "/api/embed/error-page/", PUBLIC),
    rest("GET", "/api/embed/error-page", PUBLIC),
    rest("POST", "/api/embed/error-page/", SENTRY),
    rest("POST", "/api/embed/error-page", SENTRY),
    grpc("/faultline.v1.SettingsService/GetDsn", READ),
    rest("GET", "/v1/settings/dsn", READ),
    // Keyless loopback ingest policy
    grpc("/faultline.v1.SettingsService/GetIngestPolicy", READ),
    grpc("/faultline.v1.SettingsService/SetIngestPolicy", ADMIN),
    rest("GET", "/v1/errors/ingest_policy/get", READ),
    rest("PUT", "/v1/errors/ingest_policy/set", ADMIN),
    // Log Center dialect and the fix workflow
    grpc("/faultline.v1.GroupService/TransitionWorkflow", WRITE),
    rest("POST", "/api/v1/logs/report", INGEST),
    rest("GET", "/api/v1/logs/{id}", READ),
    rest("PUT", "/api/v1/logs/{id}/status", WRITE),
    // MiniAPM dialect
    rest("POST", "/ingest/errors", INGEST),
    rest("POST", "/ingest/errors/batch", INGEST),
    // AlertService (alert rules and incidents; the Error Logging System's /api/alerts/*)
    grpc("/faultline.v1.AlertService/ListAlertRules", READ),
    grpc("/faultline.v1.AlertService/CreateAlertRule", WRITE),
    grpc("/faultline.v1.AlertService/UpdateAlertRule", WRITE),
    grpc("/faultline.v1.AlertService/DeleteAlertRule", WRITE),
    grpc("/faultline.v1.AlertService/ListIncidents", READ),
    grpc("/faultline.v1.AlertService/CreateIncident", WRITE),
    grpc("/faultline.v1.AlertService/UpdateIncident", WRITE),
    rest("GET", "/api/alerts/rules", READ),
    rest("POST", "/api/alerts/rules", WRITE),
    rest("PUT", "/api/alerts/rules/{id}", WRITE),
    rest("DELETE", "/api/alerts/rules/{id}", WRITE),
    rest("GET", "/api/alerts/incidents", READ),
    rest("POST", "/api/alerts/incidents", WRITE),
    rest("PUT", "/api/alerts/incidents/{id}", WRITE),
    // Error Logging System dialect (InsightsService)
    grpc("/faultline.v1.InsightsService/GetHealth", PUBLIC),
    grpc("/faultline.v1.InsightsService/QueryGroups", READ),
    grpc("/faultline.v1.InsightsService/GetStats", READ),
    grpc("/faultline.v1.InsightsService/GetTrends", READ),
    grpc("/faultline.v1.InsightsService/GetPerformance", READ),
    grpc("/faultline.v1.InsightsService/GetServices", READ),
    grpc("/faultline.v1.InsightsService/GetMetrics", READ),
    grpc("/faultline.v1.InsightsService/GetUptime", READ),
    rest("GET", "/health", PUBLIC),
    rest("GET", "/api/errors", READ),
    rest("POST", "/api/errors", INGEST),
    rest("GET", "/api/errors/{id}", READ),
    rest("DELETE", "/api/errors/{id}", WRITE),
    rest("PUT", "/api/errors/{id}/resolve", WRITE),
    rest("GET", "/api/stats", READ),
    rest("GET", "/api/analytics/trends", READ),
    rest("GET", "/api/analytics/performance", READ),
    rest("GET", "/api/monitoring/services", READ),
    rest("GET", "/api/monitoring/metrics", READ),
    rest("GET", "/api/monitoring/uptime", READ),
    // Project policy (rate limits, scrubbing, origins) and integrations
    grpc("/faultline.v1.SettingsService/GetProjectPolicy", READ),
    grpc("/faultline.v1.SettingsService/SetProjectPolicy", ADMIN),
    grpc("/faultline.v1.SettingsService/ListIntegrations", READ),
    grpc("/faultline.v1.SettingsService/SetIntegration", ADMIN),
    grpc("/faultline.v1.SettingsService/DeleteIntegration", ADMIN),
    grpc("/faultline.v1.SettingsService/TestIntegration", ADMIN),
    rest("GET", "/v1/settings/policy", READ),
    rest("PUT", "/v1/settings/policy", ADMIN),
    rest("GET", "/api/settings/integrations", READ),
    rest("POST", "/api/settings/integrations", ADMIN),
    rest("PUT", "/api/settings/integrations/{name}", ADMIN),
    rest("DELETE", "/api/settings/integrations/{name}", ADMIN),
    rest("POST", "/api/settings/integrations/{name}/test", ADMIN),
    // What a browser opens: the dashboard (it calls the routes above with the key it is given)
    // and the API reference (Swagger UI over the OpenAPI document).
    rest("GET", "/", PUBLIC),
    rest("GET", "/ui/app.js", PUBLIC),
    rest("GET", "/ui/app.css", PUBLIC),
    rest("GET", "/docs", PUBLIC),
    rest("GET", "/docs/", PUBLIC),
    rest("GET", "/docs/{*rest}", PUBLIC),
    rest("GET", "/openapi.json", PUBLIC),
];

/// What the gRPC method at `path` needs, if the table names it.
pub fn grpc_need(path: &str) -> Option<Need> {
    ROUTES
        .iter()
        .find(|r| r.transport == Transport::Grpc && r.path == path)
        .map(|r| r.need)
}

/// What the table says about a REST request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestLookup {
    /// The route and what it needs.
    Declared(Need),
    /// The template is known but not with this method: axum answers 405.
    OtherMethod,
    /// The table does not know the template at all.
    Undeclared,
}

/// What the REST route `method template` needs.
pub fn rest_need(method: &str, template: &str) -> RestLookup {
    // axum answers HEAD with the GET handler, so it needs what GET needs.
    let method = if method.eq_ignore_ascii_case("HEAD") {
        "GET"
    } else {
        method
    };
    let mut known = false;
    for r in ROUTES
        .iter()
        .filter(|r| r.transport == Transport::Rest && r.path == template)
    {
        known = true;
        if r.method.eq_ignore_ascii_case(method) {
            return RestLookup::Declared(r.need);
        }
    }
    if known {
        RestLookup::OtherMethod
    } else {
        RestLookup::Undeclared
    }
}

/// The check itself, shared by both transports.
fn check(ext: &http::Extensions, need: Need) -> Result<(), Error> {
    match need {
        Need::Public | Need::SentryKey => Ok(()),
        Need::Scope(scope) => require(ext, scope).map(|_| ()),
    }
}

/// Points the caller's principal at the project the request names, if it names one.
async fn select_project(store: &Store, req: &mut Request) -> Result<(), Error> {
    let Some(value) = req.headers().get(PROJECT_HEADER) else {
        return Ok(());
    };
    let malformed = || Error::malformed(PROJECT_HEADER, "must be a project id (UUID)");
    let text = value.to_str().map_err(|_| malformed())?.trim();
    if text.is_empty() {
        return Ok(());
    }
    let id = uuid::Uuid::parse_str(text).map_err(|_| malformed())?;
    let Some(Authn::Key(p)) = req.extensions().get::<Authn>().cloned() else {
        return Ok(());
    };
    if p.project_id == id {
        return Ok(());
    }
    if !p.sees_project(id) || !store.project_exists(id).await? {
        return Err(Error::NotFound { what: "project" });
    }
    req.extensions_mut().insert(Authn::Key(Principal {
        project_id: id,
        ..p
    }));
    Ok(())
}

/// The scope check, then the project selection, for a route that needs `need`.
async fn admit(store: &Store, req: &mut Request, need: Need) -> Result<(), Error> {
    check(req.extensions(), need)?;
    if matches!(need, Need::Scope(_)) {
        select_project(store, req).await?;
    }
    Ok(())
}

/// Middleware on the REST routes (as a route layer, so the matched template is known).
pub async fn enforce_rest(State(store): State<Store>, mut req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    match rest_need(req.method().as_str(), &template) {
        RestLookup::Declared(need) => match admit(&store, &mut req, need).await {
            Ok(()) => next.run(req).await,
            Err(e) => crate::rest::ApiError::from(e).into_response(),
        },
        RestLookup::OtherMethod => next.run(req).await,
        RestLookup::Undeclared => {
            tracing::error!(%template, "REST route missing from auth::routes::ROUTES; refused");
            crate::rest::ApiError::from(Error::PermissionDenied(
                "this route declares no scope and is refused".into(),
            ))
            .into_response()
        }
    }
}

/// Middleware on the gRPC services. Methods the table does not name pass on to tonic, which
/// answers UNIMPLEMENTED for unknown ones; the unit test below keeps the table complete.
pub async fn enforce_grpc(State(store): State<Store>, mut req: Request, next: Next) -> Response {
    let Some(need) = grpc_need(req.uri().path()) else {
        return next.run(req).await;
    };
    match admit(&store, &mut req, need).await {
        Ok(()) => next.run(req).await,
        Err(e) => {
            let content_type = req.headers().get(http::header::CONTENT_TYPE).cloned();
            let mut resp = tonic::Status::from(e)
                .into_http::<axum::body::Body>()
                .into_response();
            // A gRPC-Web client expects its own content type on a trailers-only answer.
            if let Some(ct) =
                content_type.filter(|v| v.as_bytes().starts_with(b"application/grpc-web"))
            {
                resp.headers_mut().insert(http::header::CONTENT_TYPE, ct);
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Every method of every faultline service in the descriptor set that reflection serves
    /// has a row, and every faultline gRPC row names a real method.
    #[test]
    fn table_covers_every_grpc_method() {
        let fds = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .expect("embedded descriptor set decodes");
        let mut served = Vec::new();
        for file in &fds.file {
            let package = file.package();
            for svc in &file.service {
                for m in &svc.method {
                    served.push(format!("/{package}.{}/{}", svc.name(), m.name()));
                }
            }
        }
        assert!(served.len() > 10, "descriptor set looks empty: {served:?}");
        for path in &served {
            assert!(
                grpc_need(path).is_some(),
                "{path} is served but has no row in auth::routes::ROUTES"
            );
        }
        for r in ROUTES.iter().filter(|r| r.transport == Transport::Grpc) {
            if r.path.starts_with("/faultline.") {
                assert!(
                    served.iter().any(|p| p == r.path),
                    "{} is in the table but not served",
                    r.path
                );
            }
        }
    }

    /// A REST route the table does not name is refused even with an owner key.
    #[tokio::test]
    async fn rest_route_missing_from_the_table_is_refused() {
        use tower::ServiceExt;
        let owner = crate::auth::Authn::Key(crate::auth::Principal {
            scopes: vec![Scope::Owner],
            ..Default::default()
        });
        let store = Store::open("sqlite::memory:", 1).await.expect("store");
        let app = axum::Router::new()
            .route(
                "/v1/not-in-the-table",
                axum::routing::get(|| async { "reached" }),
            )
            .route(
                "/v1/errors/groups",
                axum::routing::get(|| async { "reached" }),
            )
            .route_layer(axum::middleware::from_fn_with_state(store, enforce_rest));
        for (path, want) in [("/v1/not-in-the-table", 403), ("/v1/errors/groups", 200)] {
            let mut req = http::Request::get(path)
                .body(axum::body::Body::empty())
                .expect("request");
            req.extensions_mut().insert(owner.clone());
            let resp = app.clone().oneshot(req).await.expect("answer");
            assert_eq!(resp.status().as_u16(), want, "{path}");
        }
        // HEAD is answered by the GET handler and needs what GET needs.
        let head = http::Request::head("/v1/errors/groups")
            .body(axum::body::Body::empty())
            .expect("request");
        let resp = app.oneshot(head).await.expect("answer");
        assert_eq!(resp.status().as_u16(), 401);
    }

    #[test]
    fn rows_are_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.transport == b.transport && a.method == b.method && a.path == b.path),
                    "duplicate row {} {}",
                    a.method,
                    a.path
                );
            }
        }
    }
}
