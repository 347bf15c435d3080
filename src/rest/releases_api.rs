//! `/v1/errors/releases/{release}/files`: a release's files (source maps and minified
//! sources), and `/v1/errors/debug-files`: the files stored by debug id, onto `ReleaseService`.
//! A file is uploaded as the request body itself, named by `?name=` (`curl --data-binary
//! @app.min.js.map`), so a large map needs no escaping.

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, RawQuery, State},
    http::StatusCode,
    routing::{delete, get},
};
use serde_json::{Value, json};

use super::{
    error::ApiError,
    errors_api::{or_null, parse_limit, time_json},
    extract::{BodyLimit, Ctx, RawBody},
};
use crate::{
    domain::sourcemap::FILE_MAX,
    grpc::Api,
    pb::{self, release_service_server::ReleaseService},
};

pub fn routes() -> Router<Api> {
    // The body is the file: up to FILE_MAX (the handler says when it is larger still).
    let limit = FILE_MAX + 1;
    Router::new()
        .route(
            "/v1/errors/releases/{release}/files",
            get(list_files).post(upload_file).layer(body_limit(limit)),
        )
        .route(
            "/v1/errors/releases/{release}/files/{file_id}",
            delete(delete_file),
        )
        .route("/v1/errors/debug-files", get(list_debug_files))
        .route(
            "/v1/errors/debug-files/{debug_id}",
            delete(delete_debug_files),
        )
}

/// The body limit of routes that take a release file (`limit` bytes), in place of the
/// configured one, and named by their 413s.
pub(super) fn body_limit(
    limit: usize,
) -> tower::ServiceBuilder<
    tower::layer::util::Stack<
        axum::Extension<BodyLimit>,
        tower::layer::util::Stack<DefaultBodyLimit, tower::layer::util::Identity>,
    >,
> {
    tower::ServiceBuilder::new()
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(BodyLimit(limit)))
}

fn file_json(f: Option<pb::ReleaseFile>) -> Value {
    let Some(pb::ReleaseFile {
        id,
        release,
        name,
        size,
        created_at,
        sha1,
        last_used_at,
    }) = f
    else {
        return Value::Null;
    };
    json!({"id": id, "release": release, "name": name, "size": size, "sha1": sha1,
        "created_at": time_json(created_at), "last_used_at": time_json(last_used_at)})
}

fn debug_file_json(f: pb::DebugFile) -> Value {
    let pb::DebugFile {
        id,
        debug_id,
        kind,
        name,
        size,
        sha1,
        created_at,
        last_used_at,
    } = f;
    json!({"id": id, "debug_id": debug_id, "kind": kind, "name": name, "size": size,
        "sha1": sha1, "created_at": time_json(created_at),
        "last_used_at": time_json(last_used_at)})
}

async fn list_debug_files(
    State(api): State<Api>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let mut req = pb::ListDebugFilesRequest::default();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match &*k {
            "debug_id" => req.debug_id = v.into_owned(),
            "cursor" => req.cursor = v.into_owned(),
            "limit" => req.limit = parse_limit(&v)?,
            _ => {}
        }
    }
    let pb::ListDebugFilesResponse { files, next_cursor } =
        api.list_debug_files(ctx.request(req)).await?.into_inner();
    let files: Vec<Value> = files.into_iter().map(debug_file_json).collect();
    Ok(Json(json!({
        "files": files,
        "next_cursor": or_null(next_cursor),
    })))
}

async fn delete_debug_files(
    State(api): State<Api>,
    ctx: Ctx,
    Path(debug_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pb::DeleteDebugFilesResponse { deleted } = api
        .delete_debug_files(ctx.request(pb::DeleteDebugFilesRequest { debug_id }))
        .await?
        .into_inner();
    Ok(Json(json!({"ok": true, "deleted": deleted})))
}

async fn upload_file(
    State(api): State<Api>,
    ctx: Ctx,
    Path(release): Path<String>,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let pb::UploadReleaseFileResponse { file } = api
        .upload_release_file(ctx.request(pb::UploadReleaseFileRequest {
            release,
            name,
            content: body.to_vec(),
        }))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(file_json(file))))
}

async fn list_files(
    State(api): State<Api>,
    ctx: Ctx,
    Path(release): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pb::ListReleaseFilesResponse { files } = api
        .list_release_files(ctx.request(pb::ListReleaseFilesRequest { release }))
        .await?
        .into_inner();
    let files: Vec<Value> = files.into_iter().map(|f| file_json(Some(f))).collect();
    Ok(Json(json!({ "files": files })))
}

async fn delete_file(
    State(api): State<Api>,
    ctx: Ctx,
    Path((release, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    api.delete_release_file(ctx.request(pb::DeleteReleaseFileRequest {
        release,
        id: id.clone(),
    }))
    .await?;
    Ok(Json(json!({"ok": true, "deleted": true, "id": id})))
}
