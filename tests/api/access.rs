//! API keys, roles, invites, projects and the audit log, over both transports: a key is shown
//! once, revocation and expiry act on the next request, each role can do what it should and
//! no more, the last owner stays, project deletion takes its data, and every change is audited.

use faultline::pb::{self, project_service_client::ProjectServiceClient};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    auth_matrix::make_key,
    helpers::{Resp, TestApp, arr, assert_error, assert_status, s, spawn_app, time},
};

/// A request with `key` in `X-API-Key`.
pub(crate) async fn with_key(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let mut rb = app.anon(method, path).header("X-API-Key", key);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    app.send(rb).await
}

fn grpc_req<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii key"),
    );
    r
}

/// Invites `email` as `role` with the owner key and accepts; returns (member id, personal key).
pub(crate) async fn join(app: &TestApp, email: &str, role: &str) -> (String, String) {
    let r = app
        .send(
            app.authed(Method::POST, "/api/settings/team/invite")
                .json(&json!({"email": email, "role": role, "name": "Some One"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "invite: {}", r.text);
    assert_eq!(r.body["status"], "success");
    assert_eq!(r.body["data"]["status"], "pending");
    assert_eq!(r.body["data"]["role"], role);
    let token = s(&r.body["data"]["invite_token"]);
    let a = app
        .send(
            app.anon(Method::POST, "/api/settings/team/invite/accept")
                .json(&json!({"invite_token": token})),
        )
        .await;
    assert_eq!(a.status.as_u16(), 200, "accept: {}", a.text);
    assert_eq!(a.body["data"]["member"]["status"], "active");
    (
        s(&a.body["data"]["member"]["id"]),
        s(&a.body["data"]["api_key"]),
    )
}

async fn status_of(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> u16 {
    with_key(app, key, method, path, body).await.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_is_shown_once_then_only_previewed() {
    let app = spawn_app().await;
    let r = app
        .send(app.authed(Method::POST, "/api/settings/api-keys").json(&json!({
            "name": "Development Key", "permissions": ["read"], "expires_at": "2999-12-31T23:59:59Z"})))
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    let d = &r.body["data"];
    let secret = s(&d["api_key"]);
    assert!(secret.starts_with("flt_") && secret.len() > 40, "{secret}");
    assert_eq!(
        d["key_preview"],
        json!(format!("flt_****{}", &secret[secret.len() - 4..]))
    );
    assert_eq!(d["permissions"], json!(["read"]));
    assert_eq!(d["expires_at"], json!("2999-12-31T23:59:59.000Z"));
    let id = s(&d["id"]);

    let list = app.get_ok("/api/settings/api-keys").await;
    let keys = arr(&list["data"]["api_keys"]);
    let k = keys.iter().find(|k| k["id"] == json!(id)).expect("listed");
    assert!(
        k.get("api_key").is_none(),
        "the full key is listed again: {k}"
    );
    assert!(
        !list.to_string().contains(&secret),
        "the full key appears in the list"
    );
    assert_eq!(k["key_preview"], d["key_preview"]);
    assert!(k.get("last_used").is_some());
    assert_eq!(list["status"], "success");

    // The key works, with its scope only.
    assert_eq!(
        status_of(&app, &secret, Method::GET, "/v1/errors/groups", None).await,
        200
    );
    let denied = with_key(
        &app,
        &secret,
        Method::POST,
        "/v1/errors/capture",
        Some(json!({"message": "x"})),
    )
    .await;
    assert_error(&denied, 403, "FORBIDDEN", "POST", "/v1/errors/capture");

    // Bad input is answered in the documented format.
    for (body, field) in [
        (json!({"name": "", "permissions": ["read"]}), "name"),
        (json!({"name": "k", "permissions": []}), "permissions"),
        (json!({"name": "k", "permissions": ["root"]}), "permissions"),
        (
            json!({"name": "k", "permissions": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "k", "permissions": ["read"], "expires_at": "tomorrow"}),
            "expires_at",
        ),
    ] {
        let r = app
            .send(
                app.authed(Method::POST, "/api/settings/api-keys")
                    .json(&body),
            )
            .await;
        let e = assert_error(
            &r,
            422,
            "VALIDATION_ERROR",
            "POST",
            "/api/settings/api-keys",
        );
        crate::helpers::assert_detail_field(e, field);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_takes_effect_on_the_next_request_on_both_transports() {
    let app = spawn_app().await;
    let (id, key) = make_key(&app, json!({"name": "soon gone", "permissions": ["read"]})).await;
    let mut groups = app.groups_client().await;
    // Warm the key cache on both transports first: revocation must not wait for it to expire.
    assert_eq!(
        status_of(&app, &key, Method::GET, "/v1/errors/groups", None).await,
        200
    );
    groups
        .list_groups(grpc_req(pb::ListGroupsRequest::default(), &key))
        .await
        .expect("key works over gRPC");
    let r = app
        .send(app.authed(Method::DELETE, &format!("/api/settings/api-keys/{id}")))
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    let r = with_key(&app, &key, Method::GET, "/v1/errors/groups", None).await;
    let e = assert_error(&r, 401, "UNAUTHORIZED", "GET", "/v1/errors/groups");
    assert!(s(&e["message"]).contains("revoked"), "{e}");
    let st = groups
        .list_groups(grpc_req(pb::ListGroupsRequest::default(), &key))
        .await
        .expect_err("revoked key over gRPC");
    assert_status(&st, tonic::Code::Unauthenticated, "UNAUTHORIZED", None);
    // Revoked keys leave the list, and a second revocation finds nothing.
    let list = app.get_ok("/api/settings/api-keys").await;
    assert!(!list.to_string().contains(&id));
    let r = app
        .send(app.authed(Method::DELETE, &format!("/api/settings/api-keys/{id}")))
        .await;
    assert_error(
        &r,
        404,
        "NOT_FOUND",
        "DELETE",
        &format!("/api/settings/api-keys/{id}"),
    );

    // The same over gRPC.
    let mut settings = app.settings_client().await;
    let created = settings
        .create_api_key(app.req(pb::CreateApiKeyRequest {
            name: "grpc key".into(),
            permissions: vec!["read".into()],
            ..Default::default()
        }))
        .await
        .expect("create over gRPC")
        .into_inner();
    let k = created.key.expect("key");
    assert_eq!(
        k.key_preview,
        format!("flt_****{}", &created.secret[created.secret.len() - 4..])
    );
    groups
        .list_groups(grpc_req(pb::ListGroupsRequest::default(), &created.secret))
        .await
        .expect("new key works");
    settings
        .revoke_api_key(app.req(pb::RevokeApiKeyRequest { id: k.id }))
        .await
        .expect("revoke over gRPC");
    let st = groups
        .list_groups(grpc_req(pb::ListGroupsRequest::default(), &created.secret))
        .await
        .expect_err("revoked");
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_key_is_refused_with_401() {
    let app = spawn_app().await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1200);
    let (_, key) = make_key(
        &app,
        json!({"name": "short", "permissions": ["read"], "expires_at": at.to_rfc3339()}),
    )
    .await;
    assert_eq!(
        status_of(&app, &key, Method::GET, "/v1/errors/groups", None).await,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1400)).await;
    let r = with_key(&app, &key, Method::GET, "/v1/errors/groups", None).await;
    let e = assert_error(&r, 401, "UNAUTHORIZED", "GET", "/v1/errors/groups");
    assert!(s(&e["message"]).contains("expired"), "{e}");
    let st = app
        .groups_client()
        .await
        .list_groups(grpc_req(pb::ListGroupsRequest::default(), &key))
        .await
        .expect_err("expired over gRPC");
    assert_status(&st, tonic::Code::Unauthenticated, "UNAUTHORIZED", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_viewer_reads_only() {
    let app = spawn_app().await;
    let (_, group) = app.capture_text("viewer sees this").await;
    let (_, key) = join(&app, "viewer@example.com", "viewer").await;
    assert_eq!(
        status_of(&app, &key, Method::GET, "/v1/errors/groups", None).await,
        200
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::GET,
            &format!("/v1/errors/group_detail/{group}"),
            None
        )
        .await,
        200
    );
    assert_eq!(
        status_of(&app, &key, Method::GET, "/api/settings/team", None).await,
        200
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            &format!("/v1/errors/resolve/{group}"),
            None
        )
        .await,
        403
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            "/v1/errors/capture",
            Some(json!({"message": "x"}))
        )
        .await,
        403
    );
    assert_eq!(
        status_of(&app, &key, Method::GET, "/api/settings/api-keys", None).await,
        403
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            "/api/settings/team/invite",
            Some(json!({"email": "a@example.com", "role": "viewer"}))
        )
        .await,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_developer_triages_groups_but_not_settings() {
    let app = spawn_app().await;
    let (_, group) = app.capture_text("developer fixes this").await;
    let (_, key) = join(&app, "dev@example.com", "developer").await;
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            &format!("/v1/errors/resolve/{group}"),
            None
        )
        .await,
        200
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            &format!("/v1/errors/ignore/{group}"),
            None
        )
        .await,
        200
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::PUT,
            "/v1/errors/retention/set",
            Some(json!({"days": 5}))
        )
        .await,
        403
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            "/api/settings/api-keys",
            Some(json!({"name": "k", "permissions": ["read"]}))
        )
        .await,
        403
    );
    assert_eq!(
        status_of(&app, &key, Method::GET, "/api/settings/audit-log", None).await,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_admin_manages_keys_team_and_settings_but_not_owners_or_projects() {
    let app = spawn_app().await;
    let (_, key) = join(&app, "admin@example.com", "admin").await;
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            "/api/settings/api-keys",
            Some(json!({"name": "k", "permissions": ["read"]}))
        )
        .await,
        201
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            "/api/settings/api-keys",
            Some(json!({"name": "k", "permissions": ["owner"]}))
        )
        .await,
        403
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::PUT,
            "/v1/errors/retention/set",
            Some(json!({"days": 5}))
        )
        .await,
        200
    );
    assert_eq!(
        status_of(&app, &key, Method::GET, "/api/settings/audit-log", None).await,
        200
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            "/api/settings/team/invite",
            Some(json!({"email": "v@example.com", "role": "viewer"}))
        )
        .await,
        201
    );
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::POST,
            "/api/settings/team/invite",
            Some(json!({"email": "o@example.com", "role": "owner"}))
        )
        .await,
        403
    );
    // Admins do not touch owners.
    let team = app.get_ok("/api/settings/team").await;
    let owner = arr(&team["data"]["members"])
        .iter()
        .find(|m| m["role"] == "owner")
        .cloned()
        .expect("an owner");
    let path = format!("/api/settings/team/{}", s(&owner["id"]));
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::PUT,
            &path,
            Some(json!({"role": "viewer"}))
        )
        .await,
        403
    );
    assert_eq!(
        status_of(&app, &key, Method::DELETE, &path, None).await,
        403
    );
    // …nor their keys.
    let keys = app.get_ok("/api/settings/api-keys").await;
    let owner_key = arr(&keys["data"]["api_keys"])
        .iter()
        .find(|k| k["member_id"] == owner["id"])
        .cloned()
        .expect("the owner's key");
    let revoke = format!("/api/settings/api-keys/{}", s(&owner_key["id"]));
    assert_eq!(
        status_of(&app, &key, Method::DELETE, &revoke, None).await,
        403
    );
    let p = app
        .post_ok("/v1/projects/create", &json!({"name": "extra"}))
        .await;
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::DELETE,
            &format!("/v1/projects/delete/{}", s(&p["id"])),
            None
        )
        .await,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_owner_deletes_projects_and_changes_owners_and_one_owner_always_remains() {
    let app = spawn_app().await;
    let team = app.get_ok("/api/settings/team").await;
    let members = arr(&team["data"]["members"]);
    assert_eq!(members.len(), 1, "{team}");
    let first = s(&members[0]["id"]);
    assert_eq!(members[0]["role"], "owner");
    let first_path = format!("/api/settings/team/{first}");

    // Alone, the first owner can be neither demoted nor removed, nor lose their last key.
    let r = app.put(&first_path, &json!({"role": "admin"})).await;
    assert_eq!(r.0.as_u16(), 409, "{}", r.1);
    assert_eq!(app.delete(&first_path).await.0.as_u16(), 409);
    let keys = app.get_ok("/api/settings/api-keys").await;
    let own = arr(&keys["data"]["api_keys"])
        .iter()
        .find(|k| k["member_id"] == json!(first))
        .cloned()
        .expect("owner key");
    assert_eq!(
        app.delete(&format!("/api/settings/api-keys/{}", s(&own["id"])))
            .await
            .0
            .as_u16(),
        409
    );

    // A second owner: now the first may step down, and the second may delete projects.
    let (second, key) = join(&app, "owner2@example.com", "owner").await;
    let (s_, b) = app.put(&first_path, &json!({"role": "admin"})).await;
    assert_eq!(s_.as_u16(), 200, "{b}");
    assert_eq!(b["data"]["role"], "admin");
    // The demoted key lost the owner scope on its very next request.
    let p = app
        .post_ok("/v1/projects/create", &json!({"name": "doomed"}))
        .await;
    let del = format!("/v1/projects/delete/{}", s(&p["id"]));
    assert_eq!(app.delete(&del).await.0.as_u16(), 403);
    assert_eq!(status_of(&app, &key, Method::DELETE, &del, None).await, 200);
    // The second owner is now the last one.
    let r = with_key(
        &app,
        &key,
        Method::PUT,
        &format!("/api/settings/team/{second}"),
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.text);
    // …and can make the first an owner again.
    assert_eq!(
        status_of(
            &app,
            &key,
            Method::PUT,
            &first_path,
            Some(json!({"role": "owner"}))
        )
        .await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_are_one_time_and_removal_revokes_at_once() {
    let app = spawn_app().await;
    let r = app
        .send(
            app.authed(Method::POST, "/api/settings/team/invite")
                .json(&json!({"email": "Once@Example.com", "role": "developer"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(r.body["data"]["email"], "once@example.com");
    let token = s(&r.body["data"]["invite_token"]);
    let dup = app
        .send(
            app.authed(Method::POST, "/api/settings/team/invite")
                .json(&json!({"email": "once@example.com", "role": "viewer"})),
        )
        .await;
    assert_error(&dup, 409, "CONFLICT", "POST", "/api/settings/team/invite");

    // Accepting over gRPC needs no key and yields the personal key.
    let mut settings = app.settings_client().await;
    let joined = settings
        .accept_invite(tonic::Request::new(pb::AcceptInviteRequest {
            invite_token: token.clone(),
            name: "Once".into(),
        }))
        .await
        .expect("accept")
        .into_inner();
    let member = joined.member.expect("member");
    assert_eq!(member.status, pb::MemberStatus::Active as i32);
    assert_eq!(member.name, "Once");
    assert_eq!(joined.key.expect("key").member_id, member.id);
    let key = joined.secret;
    let again = app
        .send(
            app.anon(Method::POST, "/api/settings/team/invite/accept")
                .json(&json!({"invite_token": token})),
        )
        .await;
    assert_error(
        &again,
        401,
        "UNAUTHORIZED",
        "POST",
        "/api/settings/team/invite/accept",
    );
    let bogus = app
        .send(
            app.anon(Method::POST, "/api/settings/team/invite/accept")
                .json(&json!({"token": "fli_nope"})),
        )
        .await;
    assert_error(
        &bogus,
        401,
        "UNAUTHORIZED",
        "POST",
        "/api/settings/team/invite/accept",
    );

    assert_eq!(
        status_of(&app, &key, Method::GET, "/v1/errors/groups", None).await,
        200
    );
    let path = format!("/api/settings/team/{}", member.id);
    assert_eq!(app.delete(&path).await.0.as_u16(), 204);
    assert_eq!(
        status_of(&app, &key, Method::GET, "/v1/errors/groups", None).await,
        401
    );
    let team = app.get_ok("/api/settings/team").await;
    assert!(!team.to_string().contains("once@example.com"), "{team}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_keep_their_data_apart_and_deletion_takes_it_all() {
    let app = spawn_app().await;
    let (home_event, home_group) = app.capture_text("home project error").await;
    let created = app
        .post_ok("/v1/projects/create", &json!({"name": "mobile"}))
        .await;
    let id = s(&created["id"]);
    assert_eq!(created["name"], "mobile");
    assert_eq!(created["retention"]["days"], 90);

    let list = app.get_ok("/v1/projects/list").await;
    assert_eq!(arr(&list["projects"]).len(), 2);
    let renamed = app
        .put(
            &format!("/v1/projects/rename/{id}"),
            &json!({"name": "mobile-app"}),
        )
        .await;
    assert_eq!(renamed.0.as_u16(), 200, "{}", renamed.1);
    // Both transports see the same project.
    let got = ProjectServiceClient::new(app.channel().await)
        .get_project(app.req(pb::GetProjectRequest {
            project_id: id.clone(),
        }))
        .await
        .expect("get over gRPC")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(got.name, "mobile-app");
    assert_eq!(got.retention.expect("retention").days, 90);

    // A key restricted to the new project captures there and sees nothing of the home project.
    let (_, key) = make_key(
        &app,
        json!({"name": "mobile", "permissions": ["ingest", "read", "write"], "project_id": id}),
    )
    .await;
    let r = with_key(
        &app,
        &key,
        Method::POST,
        "/v1/errors/capture",
        Some(json!({"message": "mobile crash"})),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let groups = with_key(&app, &key, Method::GET, "/v1/errors/groups", None).await;
    assert_eq!(arr(&groups.body["groups"]).len(), 1, "{}", groups.text);
    assert!(!groups.text.contains(&home_group));
    let events = with_key(&app, &key, Method::GET, "/v1/errors/list", None).await;
    assert!(!events.text.contains(&home_event));
    for path in [
        format!("/v1/errors/get/{home_event}"),
        format!("/v1/errors/group_detail/{home_group}"),
    ] {
        let r = with_key(&app, &key, Method::GET, &path, None).await;
        assert_error(&r, 404, "NOT_FOUND", "GET", &path);
    }
    let projects = with_key(&app, &key, Method::GET, "/v1/projects/list", None).await;
    assert_eq!(
        arr(&projects.body["projects"]).len(),
        1,
        "{}",
        projects.text
    );
    // And the home key does not see the new project's group.
    let home_groups = app.get_ok("/v1/errors/groups").await;
    assert_eq!(arr(&home_groups["groups"]).len(), 1, "{home_groups}");

    let d = app.delete(&format!("/v1/projects/delete/{id}")).await;
    assert_eq!(d.0.as_u16(), 200, "{}", d.1);
    assert_eq!(d.1["deleted_events"], 1);
    assert_eq!(d.1["deleted_groups"], 1);
    assert_eq!(
        status_of(&app, &key, Method::GET, "/v1/errors/groups", None).await,
        401
    );
    let r = app
        .send(app.authed(Method::GET, &format!("/v1/projects/get/{id}")))
        .await;
    assert_error(
        &r,
        404,
        "NOT_FOUND",
        "GET",
        &format!("/v1/projects/get/{id}"),
    );
    // The home project is untouched, and the last project stays.
    assert_eq!(
        arr(&app.get_ok("/v1/errors/groups").await["groups"]).len(),
        1
    );
    let home = s(&app.get_ok("/v1/projects/list").await["projects"][0]["id"]);
    assert_eq!(
        app.delete(&format!("/v1/projects/delete/{home}"))
            .await
            .0
            .as_u16(),
        409
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_records_every_change_with_who_and_where() {
    let app = spawn_app().await;
    let (key_id, _) = make_key(&app, json!({"name": "audited", "permissions": ["read"]})).await;
    assert_eq!(
        app.delete(&format!("/api/settings/api-keys/{key_id}"))
            .await
            .0
            .as_u16(),
        204
    );
    let (member, _) = join(&app, "audit@example.com", "viewer").await;
    let path = format!("/api/settings/team/{member}");
    assert_eq!(
        app.put(&path, &json!({"role": "developer"}))
            .await
            .0
            .as_u16(),
        200
    );
    assert_eq!(app.delete(&path).await.0.as_u16(), 204);
    assert_eq!(
        app.put("/v1/errors/retention/set", &json!({"days": 7}))
            .await
            .0
            .as_u16(),
        200
    );
    let p = s(&app
        .post_ok("/v1/projects/create", &json!({"name": "audited"}))
        .await["id"]);
    assert_eq!(
        app.put(
            &format!("/v1/projects/rename/{p}"),
            &json!({"name": "renamed"})
        )
        .await
        .0
        .as_u16(),
        200
    );
    assert_eq!(
        app.delete(&format!("/v1/projects/delete/{p}"))
            .await
            .0
            .as_u16(),
        200
    );
    // Retention over gRPC is audited the same way.
    app.settings_client()
        .await
        .set_retention(app.req(pb::SetRetentionRequest {
            days: 8,
            ..Default::default()
        }))
        .await
        .expect("set retention over gRPC");

    let log = app.get_ok("/api/settings/audit-log?limit=100").await;
    let entries = arr(&log["data"]["entries"]);
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    for want in [
        "api_key.create",
        "api_key.revoke",
        "member.invite",
        "member.accept",
        "member.update",
        "member.remove",
        "retention.set",
        "project.create",
        "project.rename",
        "project.delete",
    ] {
        assert!(actions.contains(&want), "no {want} in {actions:?}");
    }
    // Newest first.
    assert_eq!(actions[0], "retention.set");
    assert_eq!(entries[0]["details"]["days"], 8);
    for e in entries {
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
        assert!(!s(&e["actor"]).is_empty(), "{e}");
        crate::helpers::time(&e["time"]);
        assert!(
            !e.to_string().contains("flt_") || e["action"] == "api_key.revoke",
            "a secret in {e}"
        );
    }
    let update = entries
        .iter()
        .find(|e| e["action"] == "member.update")
        .expect("update");
    assert_eq!(update["details"]["from"], "viewer");
    assert_eq!(update["details"]["to"], "developer");
    assert_eq!(update["target"], json!(format!("member:{member}")));
    let accept = entries
        .iter()
        .find(|e| e["action"] == "member.accept")
        .expect("accept");
    assert_eq!(accept["actor"], "audit@example.com");

    // Paging, and the same log over gRPC.
    let first = app.get_ok("/api/settings/audit-log?limit=3").await;
    assert_eq!(arr(&first["data"]["entries"]).len(), 3);
    let cursor = s(&first["data"]["next_cursor"]);
    let second = app
        .get_ok(&format!("/api/settings/audit-log?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(second["data"]["entries"][0]["id"], entries[3]["id"]);
    let grpc = app
        .settings_client()
        .await
        .list_audit_log(app.req(pb::ListAuditLogRequest {
            limit: 100,
            cursor: String::new(),
        }))
        .await
        .expect("audit over gRPC")
        .into_inner();
    assert_eq!(grpc.entries.len(), entries.len());
    assert_eq!(grpc.entries[0].action, "retention.set");
}

/// Every settings change is audited: the project policy, integrations (set, test, delete) and
/// the ingest policy, with the project as scope and no secret in the entry.
#[tokio::test]
async fn audit_log_records_settings_changes() {
    let app = spawn_app().await;
    let ok = |r: &Resp| assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    ok(&app
        .send(
            app.authed(Method::PUT, "/v1/settings/policy")
                .json(&json!({"rate_limits": {"ingest_per_minute": 50}, "scrub_fields": ["pin"]})),
        )
        .await);
    // Port 9 refuses the connection: the test action records a failed delivery.
    let hook = "http://127.0.0.1:9/services/T000/B000/HOOKSECRET";
    ok(&app
        .send(
            app.authed(Method::PUT, "/api/settings/integrations/slack")
                .json(&json!({"config": {"webhook_url": hook, "channel": "#ops"}})),
        )
        .await);
    ok(&app
        .send(app.authed(Method::POST, "/api/settings/integrations/slack/test"))
        .await);
    let r = app
        .send(app.authed(Method::DELETE, "/api/settings/integrations/slack"))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    ok(&app
        .send(
            app.authed(Method::PUT, "/v1/errors/ingest_policy/set")
                .json(&json!({"anonymous_loopback_ingest": true})),
        )
        .await);

    let log = app.get_ok("/api/settings/audit-log?limit=100").await;
    let entries = arr(&log["data"]["entries"]);
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == json!(action))
            .unwrap_or_else(|| panic!("no {action} in {log}"))
            .clone()
    };
    let project = s(&app.get_ok("/v1/projects/list").await["projects"][0]["id"]);
    let policy = find("project_policy.set");
    assert_eq!(
        policy["details"]["rate"]["ingest_per_minute"], 50,
        "{policy}"
    );
    assert_eq!(policy["details"]["scrub_fields"], json!(["pin"]));
    for action in ["integration.set", "integration.test", "integration.delete"] {
        let e = find(action);
        assert_eq!(e["target"], "integration:slack", "{e}");
        assert_eq!(e["details"]["kind"], "slack", "{e}");
    }
    assert_eq!(find("integration.test")["details"]["delivered"], false);
    let ingest = find("ingest_policy.set");
    assert_eq!(ingest["details"]["anonymous_loopback_ingest"], true);
    assert_eq!(ingest["target"], json!(format!("project:{project}")));
    assert_eq!(entries[0]["action"], "ingest_policy.set");
    for e in entries {
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
        assert!(!e.to_string().contains("HOOKSECRET"), "a secret in {e}");
    }
}

/// Two instances on one database: the one that revokes refuses the key at once; the other
/// within its key cache lifetime (`auth::CACHE_TTL`), as the README states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_another_instance_within_the_cache_lifetime() {
    use crate::helpers::{fresh_database_url, poll_until, spawn_app_on};
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let a = spawn_app_on(database_url.clone(), dir.path()).await;
    let mut b = spawn_app_on(database_url, dir.path()).await;
    b.key = a.key.clone();
    let (id, key) = make_key(&a, json!({"name": "shared", "permissions": ["read"]})).await;
    assert_eq!(
        status_of(&b, &key, Method::GET, "/v1/errors/groups", None).await,
        200
    );
    assert_eq!(
        a.delete(&format!("/api/settings/api-keys/{id}"))
            .await
            .0
            .as_u16(),
        204
    );
    let revoked_at = std::time::Instant::now();
    assert_eq!(
        status_of(&a, &key, Method::GET, "/v1/errors/groups", None).await,
        401
    );
    poll_until(
        faultline::auth::CACHE_TTL + std::time::Duration::from_secs(2),
        "the other instance to refuse the revoked key",
        || async {
            (status_of(&b, &key, Method::GET, "/v1/errors/groups", None).await == 401).then_some(())
        },
    )
    .await;
    assert!(
        revoked_at.elapsed() <= faultline::auth::CACHE_TTL + std::time::Duration::from_millis(500)
    );
}

/// A key that reaches every project picks one with `X-Faultline-Project` (gRPC metadata
/// `x-faultline-project`); a restricted key cannot pick another, not even to learn it exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_header_selects_the_project_of_an_unrestricted_key() {
    let app = spawn_app().await;
    let other = s(&app
        .post_ok("/v1/projects/create", &json!({"name": "web"}))
        .await["id"]);
    let header = "X-Faultline-Project";
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/capture")
                .header(header, &other)
                .json(&json!({"message": "only in web"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let group = s(&r.body["group_id"]);
    assert!(arr(&app.get_ok("/v1/errors/groups").await["groups"]).is_empty());
    let in_other = app
        .send(
            app.authed(Method::GET, "/v1/errors/groups")
                .header(header, &other),
        )
        .await;
    assert_eq!(arr(&in_other.body["groups"]).len(), 1, "{}", in_other.text);
    // Retention is per project too.
    let r = app
        .send(
            app.authed(Method::PUT, "/v1/errors/retention/set")
                .header(header, &other)
                .json(&json!({"days": 3})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let web = app.get_ok(&format!("/v1/projects/get/{other}")).await;
    assert_eq!(web["retention"]["days"], 3);
    assert_eq!(app.get_ok("/v1/errors/retention/get").await["days"], 90);

    // Over gRPC, as metadata.
    let mut req = app.req(pb::GetGroupRequest {
        group_id: group.clone(),
    });
    req.metadata_mut()
        .insert("x-faultline-project", other.parse().expect("ascii"));
    app.groups_client()
        .await
        .get_group(req)
        .await
        .expect("group of the selected project");

    // A key restricted to the home project cannot name another one.
    let home = s(&app.get_ok("/v1/projects/list").await["projects"][0]["id"]);
    let (_, key) = make_key(
        &app,
        json!({"name": "home only", "permissions": ["read"], "project_id": home}),
    )
    .await;
    for project in [other.clone(), uuid::Uuid::new_v4().to_string()] {
        let r = app
            .send(
                app.anon(Method::GET, "/v1/errors/groups")
                    .header("X-API-Key", &key)
                    .header(header, &project),
            )
            .await;
        assert_error(&r, 404, "NOT_FOUND", "GET", "/v1/errors/groups");
    }
    let mut req = grpc_req(pb::ListGroupsRequest::default(), &key);
    req.metadata_mut()
        .insert("x-faultline-project", other.parse().expect("ascii"));
    let st = app
        .groups_client()
        .await
        .list_groups(req)
        .await
        .expect_err("restricted key names another project");
    assert_eq!(st.code(), tonic::Code::NotFound);
    let r = app
        .send(
            app.authed(Method::GET, "/v1/errors/groups")
                .header(header, "not-a-uuid"),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR", "GET", "/v1/errors/groups");
    // Without a key the answer is still 401, whatever the header says.
    let r = app
        .send(
            app.anon(Method::GET, "/v1/errors/groups")
                .header(header, &other),
        )
        .await;
    assert_error(&r, 401, "UNAUTHORIZED", "GET", "/v1/errors/groups");
}

/// Two owners stepping down at the same moment: one succeeds, the other is refused, and an
/// owner remains (PostgreSQL runs these transactions truly concurrently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_owner_demotions_leave_an_owner() {
    let app = spawn_app().await;
    let first = s(&app.get_ok("/api/settings/team").await["data"]["members"][0]["id"]);
    let (second, second_key) = join(&app, "second-owner@example.com", "owner").await;
    let first_path = format!("/api/settings/team/{first}");
    let second_path = format!("/api/settings/team/{second}");
    for round in 0..5 {
        let a = with_key(
            &app,
            &app.key,
            Method::PUT,
            &first_path,
            Some(json!({"role": "admin"})),
        );
        let b = with_key(
            &app,
            &second_key,
            Method::PUT,
            &second_path,
            Some(json!({"role": "admin"})),
        );
        let (a, b) = tokio::join!(a, b);
        let mut codes = [a.status.as_u16(), b.status.as_u16()];
        codes.sort_unstable();
        assert_eq!(codes, [200, 409], "round {round}: {} / {}", a.text, b.text);
        let team = app.get_ok("/api/settings/team").await;
        let owners: Vec<String> = arr(&team["data"]["members"])
            .iter()
            .filter(|m| m["role"] == "owner")
            .map(|m| s(&m["id"]))
            .collect();
        assert_eq!(owners.len(), 1, "round {round}: {team}");
        // The remaining owner makes the other an owner again for the next round.
        let (remaining_key, demoted) = if owners[0] == first {
            (app.key.clone(), second.clone())
        } else {
            (second_key.clone(), first.clone())
        };
        let r = with_key(
            &app,
            &remaining_key,
            Method::PUT,
            &format!("/api/settings/team/{demoted}"),
            Some(json!({"role": "owner"})),
        )
        .await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    }
}

/// Deleting a project leaves no row of it in any table keyed by project: not its events,
/// groups or group keys, not its retention, policy or integrations (which hold credentials),
/// not its alert rules or incidents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_project_leaves_no_row_of_it() {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let app = spawn_app().await;
    let id = s(&app
        .post_ok("/v1/projects/create", &json!({"name": "short-lived"}))
        .await["id"]);
    let in_project = |method: Method, path: &str, body: Value| {
        app.authed(method, path)
            .header("x-faultline-project", &id)
            .json(&body)
    };
    let writes = [
        (
            Method::POST,
            "/v1/errors/capture",
            json!({"message": "gone soon", "tags": {"k": "v"}}),
        ),
        (Method::PUT, "/v1/errors/retention/set", json!({"days": 30})),
        (
            Method::PUT,
            "/v1/settings/policy",
            json!({"scrub_fields": ["ssn"]}),
        ),
        (
            Method::PUT,
            "/api/settings/integrations/webhook",
            json!({"config": {"url": "https://example.com/hook", "secret": "whsec_gone_0123456789"}}),
        ),
        (
            Method::POST,
            "/api/alerts/rules",
            json!({"name": "r", "condition": "new_issues"}),
        ),
        (Method::POST, "/api/alerts/incidents", json!({"title": "t"})),
    ];
    for (method, path, body) in writes {
        let r = app.send(in_project(method, path, body)).await;
        assert!(r.status.is_success(), "{path}: {}", r.text);
    }
    let tables = [
        "events",
        "event_tags",
        "groups",
        "group_hashes",
        "retention",
        "project_settings",
        "integrations",
        "alert_rules",
        "incidents",
    ];
    let rows_of_project = || async {
        let db = Database::connect(app.db_url())
            .await
            .expect("open the database");
        let mut found = Vec::new();
        for table in tables {
            let rows = db
                .query_all_raw(Statement::from_string(
                    db.get_database_backend(),
                    format!("SELECT project_id FROM {table}"),
                ))
                .await
                .unwrap_or_else(|e| panic!("read {table}: {e}"));
            let n = rows
                .iter()
                .filter(|r| {
                    r.try_get::<uuid::Uuid>("", "project_id")
                        .unwrap()
                        .to_string()
                        == id
                })
                .count();
            found.push((table, n));
        }
        db.close().await.expect("close");
        found
    };
    let before = rows_of_project().await;
    assert!(
        before.iter().all(|(_, n)| *n > 0),
        "every table holds a row of the project: {before:?}"
    );

    let d = app.delete(&format!("/v1/projects/delete/{id}")).await;
    assert_eq!(d.0.as_u16(), 200, "{}", d.1);
    let after = rows_of_project().await;
    assert!(after.iter().all(|(_, n)| *n == 0), "left behind: {after:?}");
}

/// Assigning issues to members of the team, as in Sentry: by email (any case) or id, over REST
/// (Sentry's `assignedTo` too) and gRPC; the listing filters by assignee or `none`; a name that
/// is no member is refused by field; removing the member unassigns their issues. A developer
/// may assign (a triage change, like resolving).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_are_assigned_to_members_of_the_team() {
    let app = spawn_app().await;
    let (_, checkout) = app.capture_text("checkout total is NaN").await;
    let (_, login) = app.capture_text("login loops forever").await;
    let (alice, alice_key) = join(&app, "alice@example.com", "developer").await;
    let (bob, bob_key) = join(&app, "bob@example.com", "viewer").await;

    let path = format!("/v1/errors/assign/{checkout}");
    let r = with_key(
        &app,
        &alice_key,
        Method::POST,
        &path,
        Some(json!({"assignee": "Alice@Example.com"})),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    crate::rest::assert_group_shape(&r.body);
    assert_eq!(
        r.body["assignee"],
        json!({"id": alice, "name": "Some One", "email": "alice@example.com"})
    );
    assert_eq!(app.group(&checkout).await["assignee"]["id"], json!(alice));

    // gRPC, by id.
    let mut groups = app.groups_client().await;
    let g = groups
        .assign_group(app.req(pb::AssignGroupRequest {
            group_id: login.clone(),
            assignee: bob.clone(),
        }))
        .await
        .expect("AssignGroup")
        .into_inner()
        .group
        .unwrap();
    assert_eq!(
        g.assignee.as_ref().map(|a| a.email.as_str()),
        Some("bob@example.com")
    );

    let listed = |q: String| {
        let app = &app;
        async move {
            let r = app.get_ok(&format!("/v1/errors/groups?{q}")).await;
            arr(&r["groups"])
                .iter()
                .map(|g| s(&g["id"]))
                .collect::<Vec<_>>()
        }
    };
    let none = || "assignee=none".to_owned();
    let by_alice = "assignee=alice%40example.com".to_owned();
    assert_eq!(listed(by_alice).await, vec![checkout.clone()]);
    assert_eq!(
        listed(format!("assigned_to={bob}")).await,
        vec![login.clone()]
    );
    assert_eq!(listed(none()).await, Vec::<String>::new());
    let by_grpc = groups
        .list_groups(app.req(pb::ListGroupsRequest {
            assignee: "alice@example.com".into(),
            ..Default::default()
        }))
        .await
        .expect("ListGroups")
        .into_inner()
        .groups;
    assert_eq!(by_grpc.len(), 1);
    assert_eq!(by_grpc[0].id, checkout);

    // Unassigned with Sentry's spelling.
    let r = app.post_ok(&path, &json!({"assignedTo": null})).await;
    assert_eq!(r["assignee"], Value::Null);
    assert_eq!(listed(none()).await, vec![checkout.clone()]);

    // Refused by field: no such member, a wrong type, no assignee at all; the list filter too.
    for (body, code) in [
        (json!({"assignee": "carol@example.com"}), "UNKNOWN_MEMBER"),
        (json!({"assignee": 7}), "INVALID_TYPE"),
        (json!({}), "REQUIRED"),
    ] {
        let r = app.send(app.authed(Method::POST, &path).json(&body)).await;
        assert_error(&r, 422, "VALIDATION_ERROR", "POST", &path);
        assert!(r.text.contains(code), "{body}: {}", r.text);
    }
    let r = app
        .send(app.authed(
            Method::GET,
            "/v1/errors/groups?assignee=carol%40example.com",
        ))
        .await;
    assert_error(&r, 422, "VALIDATION_ERROR", "GET", "/v1/errors/groups");
    let e = groups
        .assign_group(app.req(pb::AssignGroupRequest {
            group_id: login.clone(),
            assignee: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .expect_err("no such member");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    // A viewer may not assign; an unknown issue is 404.
    let body = Some(json!({"assignee": null}));
    let r = with_key(&app, &bob_key, Method::POST, &path, body).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    let missing = format!("/v1/errors/assign/{}", uuid::Uuid::new_v4());
    let r = app
        .send(
            app.authed(Method::POST, &missing)
                .json(&json!({"assignee": null})),
        )
        .await;
    assert_error(&r, 404, "NOT_FOUND", "POST", &missing);

    // In bulk, to "me": the member whose key calls (Alice's), who then lists "her" issues. A
    // key that belongs to no member cannot say "me".
    let body = json!({"error_group_ids": [checkout, login], "action": "assign", "assignee": "me"});
    let r = with_key(
        &app,
        &alice_key,
        Method::POST,
        "/v1/errors/bulk",
        Some(body),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["action"], "assign");
    assert_eq!(arr(&r.body["succeeded"]).len(), 2, "{}", r.text);
    let mine = with_key(
        &app,
        &alice_key,
        Method::GET,
        "/v1/errors/groups?assignee=me",
        None,
    )
    .await;
    assert_eq!(arr(&mine.body["groups"]).len(), 2, "{}", mine.text);
    let (_, service_key) = make_key(
        &app,
        json!({"name": "ci", "permissions": ["read", "write"]}),
    )
    .await;
    let body = json!({"assignee": "me"});
    let r = with_key(&app, &service_key, Method::POST, &path, Some(body)).await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text);
    assert!(r.text.contains("NO_MEMBER"), "{}", r.text);
    // Back as they were: the checkout issue unassigned (bulk, over gRPC), the login one Bob's.
    let bulk = groups
        .bulk_update_groups(app.req(pb::BulkUpdateGroupsRequest {
            group_ids: vec![checkout.clone()],
            action: pb::BulkAction::Assign as i32,
            ..Default::default()
        }))
        .await
        .expect("bulk unassign")
        .into_inner();
    assert_eq!(bulk.succeeded, vec![checkout.clone()]);
    app.post_ok(
        &format!("/v1/errors/assign/{login}"),
        &json!({"assignee": bob}),
    )
    .await;
    assert_eq!(listed(none()).await, vec![checkout.clone()]);

    // Bob leaves the team: his issue is unassigned.
    let r = app
        .send(app.authed(Method::DELETE, &format!("/api/settings/team/{bob}")))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(app.group(&login).await["assignee"], Value::Null);
    // Its activity says so, by whoever removed him.
    let history = app.get_ok(&format!("/v1/errors/activity/{login}")).await;
    let newest = &arr(&history["activity"])[0];
    assert_eq!(
        (&newest["type"], &newest["actor"]),
        (&json!("unassigned"), &json!("admin")),
        "{history}"
    );
    let mut unassigned = listed(none()).await;
    unassigned.sort();
    let mut both = vec![checkout, login];
    both.sort();
    assert_eq!(unassigned, both);
}

/// Comments on issues, as in Sentry's activity: any key that may triage writes them (signed
/// with its member's name, else the key's), every reader lists them oldest first over REST and
/// gRPC; only the author or an admin deletes one; they follow a merge and go with the issue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_carry_comments_from_the_team() {
    let app = spawn_app().await;
    let (_, g) = app.capture_text("payment webhook times out").await;
    let (_, other) = app.capture_text("payment webhook retries twice").await;
    let (alice, alice_key) = join(&app, "alice@example.com", "developer").await;
    let (_, carol_key) = join(&app, "carol@example.com", "developer").await;
    let (_, viewer_key) = join(&app, "vic@example.com", "viewer").await;
    let path = format!("/v1/errors/comments/{g}");

    let body = Some(json!({"text": "  Looking into it; the provider changed its TLS setup.  "}));
    let r = with_key(&app, &alice_key, Method::POST, &path, body).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(r.body["author"], "Some One");
    assert_eq!(r.body["member_id"], json!(alice));
    assert_eq!(r.body["error_group_id"], json!(g));
    assert_eq!(
        r.body["text"],
        "Looking into it; the provider changed its TLS setup."
    );
    let alices = s(&r.body["id"]);

    let mut groups = app.groups_client().await;
    let owners = groups
        .add_group_comment(app.req(pb::AddGroupCommentRequest {
            group_id: g.clone(),
            text: "Thanks, assigning to you.".into(),
        }))
        .await
        .expect("AddGroupComment")
        .into_inner()
        .comment
        .unwrap();
    assert!(!owners.author.is_empty());

    // Readers see both, oldest first; a viewer may read but not write.
    let r = with_key(&app, &viewer_key, Method::GET, &path, None).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let texts: Vec<String> = arr(&r.body["comments"])
        .iter()
        .map(|c| s(&c["text"]))
        .collect();
    assert_eq!(
        texts,
        [
            "Looking into it; the provider changed its TLS setup.",
            "Thanks, assigning to you."
        ]
    );
    let listed = groups
        .list_group_comments(app.req(pb::ListGroupCommentsRequest {
            group_id: g.clone(),
        }))
        .await
        .expect("ListGroupComments")
        .into_inner()
        .comments;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].id, owners.id);
    let body = Some(json!({"text": "me too"}));
    let r = with_key(&app, &viewer_key, Method::POST, &path, body).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);

    // Refused by field: blank, too long; an unknown issue is 404.
    for (text, code) in [
        ("   ".to_owned(), "REQUIRED"),
        ("x".repeat(10_001), "TOO_LONG"),
    ] {
        let r = app
            .send(app.authed(Method::POST, &path).json(&json!({"text": text})))
            .await;
        assert_error(&r, 422, "VALIDATION_ERROR", "POST", &path);
        assert!(r.text.contains(code), "{}", r.text);
    }
    let missing = format!("/v1/errors/comments/{}", uuid::Uuid::new_v4());
    let r = app.send(app.authed(Method::GET, &missing)).await;
    assert_error(&r, 404, "NOT_FOUND", "GET", &missing);

    // Edited by its author only (an admin may delete it, not rewrite it), checked as when
    // written; the owner edits its own over gRPC.
    let alices_path = format!("{path}/{alices}");
    let edit = Some(json!({"text": " Looking into it; the provider rotated its certificate. "}));
    let r = with_key(&app, &alice_key, Method::PUT, &alices_path, edit).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(
        r.body["text"],
        "Looking into it; the provider rotated its certificate."
    );
    assert!(r.body["edited_at"].is_string(), "{}", r.text);
    for key in [&carol_key, &app.key] {
        let body = Some(json!({"text": "rewritten"}));
        let r = with_key(&app, key, Method::PUT, &alices_path, body).await;
        assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    }
    let r = with_key(
        &app,
        &alice_key,
        Method::PUT,
        &alices_path,
        Some(json!({"text": " "})),
    )
    .await;
    assert_error(&r, 422, "VALIDATION_ERROR", "PUT", &alices_path);
    let edited = groups
        .update_group_comment(app.req(pb::UpdateGroupCommentRequest {
            group_id: g.clone(),
            comment_id: owners.id.clone(),
            text: "Thanks, it is yours.".into(),
        }))
        .await
        .expect("UpdateGroupComment")
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(edited.text, "Thanks, it is yours.");
    assert!(edited.edited_at.is_some() && owners.edited_at.is_none());
    let texts: Vec<String> = arr(&app.get_ok(&path).await["comments"])
        .iter()
        .map(|c| s(&c["text"]))
        .collect();
    assert_eq!(
        texts,
        [
            "Looking into it; the provider rotated its certificate.",
            "Thanks, it is yours."
        ]
    );

    // Carol may not delete Alice's comment; Alice may, once; the owner (an admin) deletes
    // anyone's.
    let alices_path = format!("{path}/{alices}");
    let r = with_key(&app, &carol_key, Method::DELETE, &alices_path, None).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    let r = with_key(&app, &alice_key, Method::DELETE, &alices_path, None).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["comment_id"], json!(alices));
    let r = with_key(&app, &alice_key, Method::DELETE, &alices_path, None).await;
    assert_error(&r, 404, "NOT_FOUND", "DELETE", &alices_path);
    let body = Some(json!({"text": "Carol's note"}));
    let r = with_key(&app, &carol_key, Method::POST, &path, body).await;
    let carols = format!("{path}/{}", s(&r.body["id"]));
    let r = app.send(app.authed(Method::DELETE, &carols)).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);

    // Merged into the other issue (which has more events), the conversation goes along;
    // deleting that issue deletes it.
    app.capture_text("payment webhook retries twice").await;
    let merged = app
        .post_ok("/v1/errors/merge", &json!({"error_group_ids": [g, other]}))
        .await;
    assert_eq!(merged["error_group"]["id"], json!(other), "{merged}");
    let kept = app.get_ok(&format!("/v1/errors/comments/{other}")).await;
    let texts: Vec<String> = arr(&kept["comments"])
        .iter()
        .map(|c| s(&c["text"]))
        .collect();
    assert_eq!(texts, ["Thanks, it is yours."]);
    let r = app.send(app.authed(Method::GET, &path)).await;
    assert_error(&r, 404, "NOT_FOUND", "GET", &path);
    let r = app
        .send(app.authed(Method::DELETE, &format!("/v1/errors/delete/{other}")))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let merged_comments = groups
        .list_group_comments(app.req(pb::ListGroupCommentsRequest { group_id: other }))
        .await
        .expect_err("the issue is gone");
    assert_eq!(merged_comments.code(), tonic::Code::NotFound);
}

/// An issue's activity tells who did what to it, newest first: a member resolving it, the
/// event that reopened it (by Faultline, naming its release), an ignore until one more event
/// and Faultline ending it, assignment and unassignment, a comment, a workflow move, a merge
/// bringing the merged issue's own history along, and its first event last. REST and gRPC
/// answer the same; the issue's deletion takes its activity along.
#[tokio::test]
async fn issues_keep_their_activity() {
    let app = spawn_app().await;
    let event = |message: &str, release: &str| json!({"message": message, "release": release});
    let first = app.capture(event("cart total is NaN", "web@1")).await;
    let g = s(&first["group_id"]);
    let other = s(&app.capture(event("cart total is undefined", "web@1")).await["group_id"]);
    let (alice, alice_key) = join(&app, "alice@example.com", "developer").await;
    let path = format!("/v1/errors/activity/{g}");

    let r = with_key(
        &app,
        &alice_key,
        Method::POST,
        &format!("/v1/errors/resolve/{g}"),
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let reopening = app.capture(event("cart total is NaN", "web@2")).await;
    let mut groups = app.groups_client().await;
    groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: g.clone(),
            ignore_duration: None,
            ignore_count: Some(1),
            ignore_user_count: None,
            ..Default::default()
        }))
        .await
        .expect("IgnoreGroup");
    app.capture(event("cart total is NaN", "web@2")).await;
    assert_eq!(app.group(&g).await["status"], "unresolved");
    let assign = format!("/v1/errors/assign/{g}");
    let r = with_key(
        &app,
        &alice_key,
        Method::POST,
        &assign,
        Some(json!({"assignee": "me"})),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    app.post_ok(&assign, &json!({"assignee": null})).await;
    let body = Some(json!({"text": "NaN comes from the coupon service"}));
    let r = with_key(
        &app,
        &alice_key,
        Method::POST,
        &format!("/v1/errors/comments/{g}"),
        body,
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    groups
        .transition_workflow(app.req(pb::TransitionWorkflowRequest {
            group_id: g.clone(),
            stage: pb::WorkflowStage::Verifying as i32,
        }))
        .await
        .expect("TransitionWorkflow");
    let r = with_key(
        &app,
        &alice_key,
        Method::POST,
        &format!("/v1/errors/resolve/{other}"),
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let merged = app
        .post_ok("/v1/errors/merge", &json!({"error_group_ids": [other, g]}))
        .await;
    assert_eq!(merged["error_group"]["id"], json!(g), "{merged}");

    let r = app.get_ok(&path).await;
    let entries = arr(&r["activity"]);
    let summary: Vec<(String, Value)> = entries
        .iter()
        .map(|e| (s(&e["type"]), e["actor"].clone()))
        .collect();
    let by = |name: &str| json!(name);
    assert_eq!(
        summary,
        vec![
            ("merge".to_owned(), by("admin")),
            ("set_resolved".to_owned(), by("Some One")),
            ("workflow".to_owned(), by("admin")),
            ("note".to_owned(), by("Some One")),
            ("unassigned".to_owned(), by("admin")),
            ("assigned".to_owned(), by("Some One")),
            ("set_unresolved".to_owned(), Value::Null),
            ("set_ignored".to_owned(), by("admin")),
            ("set_regression".to_owned(), Value::Null),
            ("set_resolved".to_owned(), by("Some One")),
            ("first_seen".to_owned(), Value::Null),
        ],
        "{r}"
    );
    let data = |i: usize| entries[i]["data"].clone();
    assert_eq!(data(0), json!({"merged_group_ids": [other], "events": 1}));
    assert_eq!(
        entries[1]["error_group_id"],
        json!(g),
        "moved along with the merge"
    );
    assert_eq!(data(2), json!({"from": "NEW", "to": "VERIFYING"}));
    assert_eq!(
        data(3),
        json!({"text": "NaN comes from the coupon service"})
    );
    assert_eq!(entries[3]["member_id"], json!(alice));
    assert_eq!(
        data(5),
        json!({"assignee": {"id": alice, "name": "Some One", "email": "alice@example.com"}})
    );
    assert_eq!(data(6), json!({"snooze_end": "count_reached"}));
    assert_eq!(
        data(7),
        json!({"ignore_duration": null, "ignore_count": 1, "ignore_user_count": null,
               "ignore_window": null, "ignore_user_window": null, "until_escalating": false})
    );
    assert_eq!(
        data(8),
        json!({"release": "web@2", "event_id": reopening["event_id"]})
    );
    assert_eq!(entries[8]["member_id"], Value::Null);
    assert_eq!(entries[10]["id"], Value::Null);
    let first_seen = time(&app.group(&g).await["first_seen"]);
    assert_eq!(time(&entries[10]["created_at"]), first_seen);
    let times: Vec<_> = entries.iter().map(|e| time(&e["created_at"])).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    // gRPC: the newest three, with their typed fields.
    let got = groups
        .list_group_activity(app.req(pb::ListGroupActivityRequest {
            group_id: g.clone(),
            limit: 3,
        }))
        .await
        .expect("ListGroupActivity")
        .into_inner()
        .activity;
    let types: Vec<&str> = got.iter().map(|a| a.r#type.as_str()).collect();
    assert_eq!(types, ["merge", "set_resolved", "workflow"]);
    assert_eq!(got[0].merged_group_ids, vec![other.clone()]);
    assert_eq!(got[0].merged_events, 1);
    assert_eq!(got[0].actor, "admin");
    assert_eq!(
        (got[2].workflow_from.as_str(), got[2].workflow_to.as_str()),
        ("NEW", "VERIFYING")
    );
    assert_eq!(
        arr(&app.get_ok(&format!("{path}?limit=2")).await["activity"]).len(),
        2
    );

    // Refused: an unknown issue, a bad limit; gone with its issue.
    let missing = format!("/v1/errors/activity/{}", uuid::Uuid::new_v4());
    let r = app.send(app.authed(Method::GET, &missing)).await;
    assert_error(&r, 404, "NOT_FOUND", "GET", &missing);
    let bad = format!("{path}?limit=lots");
    let r = app.send(app.authed(Method::GET, &bad)).await;
    assert_error(&r, 422, "VALIDATION_ERROR", "GET", &bad);
    let r = app
        .send(app.authed(Method::DELETE, &format!("/v1/errors/delete/{g}")))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let gone = groups
        .list_group_activity(app.req(pb::ListGroupActivityRequest {
            group_id: g.clone(),
            limit: 0,
        }))
        .await
        .expect_err("the issue is gone");
    assert_eq!(gone.code(), tonic::Code::NotFound);
}
