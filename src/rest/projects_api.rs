//! `/v1/projects/*`: the native project routes, shaped like `/v1/errors/*` (a verb per path,
//! plain JSON answers), onto `ProjectService`.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{delete, get, post, put},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::ApiError,
    errors_api::{retention_json, time_json},
    extract::{ApiJson, Ctx},
};
use crate::{
    error::Error,
    grpc::Api,
    pb::{self, project_service_server::ProjectService},
};

type ApiResult = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<Api> {
    Router::new()
        .route("/v1/projects/create", post(create))
        .route("/v1/projects/list", get(list))
        .route("/v1/projects/get/{project_id}", get(get_one))
        .route("/v1/projects/rename/{project_id}", put(rename))
        .route("/v1/projects/delete/{project_id}", delete(remove))
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

fn project_json(p: Option<pb::Project>) -> Result<Value, Error> {
    let pb::Project {
        id,
        name,
        created_at,
        retention,
    } = p.ok_or_else(|| Error::Internal("answer without a project".into()))?;
    Ok(json!({
        "id": id,
        "project_id": id,
        "name": name,
        "created_at": time_json(created_at),
        "retention": retention_json(retention),
    }))
}

async fn create(State(api): State<Api>, ctx: Ctx, ApiJson(body): ApiJson<NameBody>) -> ApiResult {
    let NameBody { name } = body;
    let pb::CreateProjectResponse { project } = api
        .create_project(ctx.request(pb::CreateProjectRequest { name }))
        .await?
        .into_inner();
    Ok(Json(project_json(project)?))
}

async fn list(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::ListProjectsResponse { projects } = api
        .list_projects(ctx.request(pb::ListProjectsRequest {}))
        .await?
        .into_inner();
    let projects = projects
        .into_iter()
        .map(|p| project_json(Some(p)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "projects": projects })))
}

async fn get_one(State(api): State<Api>, ctx: Ctx, Path(project_id): Path<String>) -> ApiResult {
    let pb::GetProjectResponse { project } = api
        .get_project(ctx.request(pb::GetProjectRequest { project_id }))
        .await?
        .into_inner();
    Ok(Json(project_json(project)?))
}

async fn rename(
    State(api): State<Api>,
    ctx: Ctx,
    Path(project_id): Path<String>,
    ApiJson(body): ApiJson<NameBody>,
) -> ApiResult {
    let NameBody { name } = body;
    let pb::RenameProjectResponse { project } = api
        .rename_project(ctx.request(pb::RenameProjectRequest { project_id, name }))
        .await?
        .into_inner();
    Ok(Json(project_json(project)?))
}

async fn remove(State(api): State<Api>, ctx: Ctx, Path(project_id): Path<String>) -> ApiResult {
    let pb::DeleteProjectResponse {
        project_id,
        deleted_events,
        deleted_groups,
    } = api
        .delete_project(ctx.request(pb::DeleteProjectRequest { project_id }))
        .await?
        .into_inner();
    Ok(Json(json!({
        "ok": true,
        "deleted": true,
        "project_id": project_id,
        "deleted_events": deleted_events,
        "deleted_groups": deleted_groups,
    })))
}
