//! The Sentry API that `sentry-cli sourcemaps upload` uses, onto `ReleaseService`:
//! - sentry-cli 3 asks for the chunk-upload options, uploads an artifact bundle in SHA-1 chunks
//!   and has it assembled (`UploadChunks`, `AssembleBundle`);
//! - sentry-cli 2, told that the chunk upload takes no release files, creates the release (onto
//!   `GroupService.ListReleases`: nothing is stored), lists its files, deletes one, and uploads
//!   each as a multipart form (`file`, `name`).
//!
//! The files belong to the calling key's project (as every native route); the organization
//! and project slugs in the path are not used to choose it.

use axum::{
    Json, Router,
    extract::{Multipart, Path, State},
    http::StatusCode,
    routing::{delete, get, post},
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::ApiError,
    errors_api::time_json,
    extract::{ApiJson, Ctx},
    releases_api::body_limit,
};
use crate::{
    domain::sourcemap::{CHUNK_MAX, FILE_MAX},
    error::Error,
    grpc::{Api, convert},
    pb::{self, group_service_server::GroupService, release_service_server::ReleaseService},
};

pub fn routes() -> Router<Api> {
    // A form carries the file and a few small fields.
    let limit = FILE_MAX + 64 * 1024;
    Router::new()
        .route("/api/0/organizations/{org}/releases/", post(create_release))
        .route(
            "/api/0/projects/{org}/{project}/releases/",
            post(create_release_in_project),
        )
        .route(
            "/api/0/projects/{org}/{project}/releases/{version}/files/",
            get(list_files).post(upload_file).layer(body_limit(limit)),
        )
        .route(
            "/api/0/projects/{org}/{project}/releases/{version}/files/{file_id}/",
            delete(delete_file),
        )
        .route(
            "/api/0/organizations/{org}/chunk-upload/",
            get(chunk_options)
                .post(upload_chunks)
                .layer(body_limit(CHUNKS_PER_REQUEST * CHUNK_MAX + 64 * 1024)),
        )
        .route(
            "/api/0/organizations/{org}/artifactbundle/assemble/",
            post(assemble),
        )
}

/// Chunks sentry-cli may send in one request.
const CHUNKS_PER_REQUEST: usize = 4;

/// How sentry-cli is to cut and send a bundle: SHA-1 chunks of 8 MiB, four to a request, one
/// request at a time, uncompressed; files are assembled as artifact bundles.
async fn chunk_options(Path(org): Path<String>) -> Json<Value> {
    Json(json!({
        "url": format!("/api/0/organizations/{org}/chunk-upload/"),
        "chunkSize": CHUNK_MAX,
        "chunksPerRequest": CHUNKS_PER_REQUEST,
        "maxRequestSize": CHUNKS_PER_REQUEST * CHUNK_MAX,
        "maxFileSize": CHUNKS_PER_REQUEST * CHUNK_MAX * 16,
        "maxWait": 60,
        "hashAlgorithm": "sha1",
        "concurrency": 1,
        "compression": [],
        "accept": ["artifact_bundles"],
    }))
}

/// The chunks of a form (each a `file` part), stored.
async fn upload_chunks(
    State(api): State<Api>,
    ctx: Ctx,
    Path(_org): Path<String>,
    mut form: Multipart,
) -> Result<Json<Value>, ApiError> {
    let mut chunks = Vec::new();
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        if field.name() == Some("file") {
            chunks.push(field.bytes().await.map_err(form_error)?.to_vec());
        }
    }
    api.upload_chunks(ctx.request(pb::UploadChunksRequest { chunks }))
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct AssembleBody {
    checksum: String,
    #[serde(default)]
    chunks: Vec<String>,
    #[serde(default)]
    version: Option<String>,
}

/// sentry-cli's "assemble this artifact bundle", answered in Sentry's shape: `state` (`ok`,
/// `not_found` with `missingChunks`, `error` with `detail`).
async fn assemble(
    State(api): State<Api>,
    ctx: Ctx,
    Path(_org): Path<String>,
    ApiJson(body): ApiJson<AssembleBody>,
) -> Result<Json<Value>, ApiError> {
    let pb::AssembleBundleResponse {
        state,
        missing_chunks,
        detail,
        files: _,
        debug_ids: _,
    } = api
        .assemble_bundle(ctx.request(pb::AssembleBundleRequest {
            checksum: body.checksum,
            chunks: body.chunks,
            release: body.version.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    Ok(Json(json!({
        "state": state,
        "missingChunks": missing_chunks,
        "detail": if detail.is_empty() { Value::Null } else { Value::String(detail) },
    })))
}

/// A form that cannot be read, as a malformed body.
fn form_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::from(Error::malformed("body", e.body_text()))
}

/// A release file as Sentry shows an artifact.
fn artifact(f: pb::ReleaseFile) -> Value {
    json!({
        "id": f.id, "name": f.name, "dist": null, "headers": {}, "size": f.size,
        "sha1": f.sha1, "dateCreated": time_json(f.created_at),
    })
}

#[derive(Deserialize)]
struct NewRelease {
    version: String,
}

/// Sentry's "create a release": Faultline knows a release by the events and files that name
/// it, so this answers with it (first seen, when its events came first) and stores nothing.
async fn create_release(
    State(api): State<Api>,
    ctx: Ctx,
    ApiJson(NewRelease { version }): ApiJson<NewRelease>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let version = version.trim().to_owned();
    if version.is_empty() {
        return Err(Error::required("version").into());
    }
    let pb::ListReleasesResponse { releases } = api
        .list_releases(ctx.request(pb::ListReleasesRequest { limit: 1000 }))
        .await?
        .into_inner();
    let known = releases.into_iter().find(|r| r.version == version);
    let created = time_json(Some(
        known
            .as_ref()
            .and_then(|r| r.first_seen)
            .unwrap_or_else(|| convert::ts(Utc::now())),
    ));
    let status = if known.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({
            "version": version, "shortVersion": version, "ref": null, "url": null,
            "dateCreated": created, "dateReleased": null, "lastEvent": null,
            "newGroups": known.map_or(0, |r| r.new_issue_count), "projects": [],
        })),
    ))
}

async fn create_release_in_project(
    state: State<Api>,
    ctx: Ctx,
    Path((_org, _project)): Path<(String, String)>,
    body: ApiJson<NewRelease>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create_release(state, ctx, body).await
}

async fn list_files(
    State(api): State<Api>,
    ctx: Ctx,
    Path((_org, _project, release)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let pb::ListReleaseFilesResponse { files } = api
        .list_release_files(ctx.request(pb::ListReleaseFilesRequest { release }))
        .await?
        .into_inner();
    Ok(Json(Value::Array(
        files.into_iter().map(artifact).collect(),
    )))
}

/// The form sentry-cli sends: the file's bytes in `file`, its URL in `name`; `dist` and
/// `header` fields are read past.
async fn upload_file(
    State(api): State<Api>,
    ctx: Ctx,
    Path((_org, _project, release)): Path<(String, String, String)>,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (mut name, mut content) = (None, None);
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        match field.name() {
            Some("file") => {
                let file_name = field.file_name().map(str::to_owned);
                content = Some(field.bytes().await.map_err(form_error)?);
                name = name.or(file_name);
            }
            Some("name") => name = Some(field.text().await.map_err(form_error)?),
            _ => {}
        }
    }
    let content = content.ok_or_else(|| Error::required("file"))?;
    let pb::UploadReleaseFileResponse { file } = api
        .upload_release_file(ctx.request(pb::UploadReleaseFileRequest {
            release,
            name: name.unwrap_or_default(),
            content: content.to_vec(),
        }))
        .await?
        .into_inner();
    let file = file.ok_or_else(|| Error::Internal("answer without a file".into()))?;
    Ok((StatusCode::CREATED, Json(artifact(file))))
}

async fn delete_file(
    State(api): State<Api>,
    ctx: Ctx,
    Path((_org, _project, release, id)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    api.delete_release_file(ctx.request(pb::DeleteReleaseFileRequest { release, id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
