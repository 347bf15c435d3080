//! `ProjectService`: create, list, get, rename and delete projects. A key restricted to one
//! project sees only that project; any other id is answered as not found.

use tonic::{Request, Response, Status};

use super::{Api, access, convert};
use crate::{
    auth::{self, Principal, Scope},
    domain::model::from_millis,
    error::Error,
    pb::{self, project_service_server::ProjectService},
    store::ProjectRecord,
};

fn project_to_pb(p: ProjectRecord) -> pb::Project {
    let ProjectRecord {
        id,
        name,
        created_at,
        retention,
    } = p;
    pb::Project {
        id: id.to_string(),
        name,
        created_at: Some(convert::ts(from_millis(created_at))),
        retention: Some(convert::retention_to_pb(retention)),
    }
}

/// The project id of a request, if the caller may see that project.
fn visible(p: &Principal, id: &str) -> Result<uuid::Uuid, Error> {
    let id = convert::uuid("project_id", id)?;
    if !p.sees_project(id) {
        return Err(Error::NotFound { what: "project" });
    }
    Ok(id)
}

#[tonic::async_trait]
impl ProjectService for Api {
    #[tracing::instrument(skip_all, name = "faultline.v1.ProjectService/CreateProject")]
    async fn create_project(
        &self,
        req: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::CreateProjectResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        if p.restricted {
            return Err(Error::PermissionDenied(
                "this API key is restricted to one project and cannot create projects".into(),
            )
            .into());
        }
        let entry = access::audit(&p, req.extensions(), "project.create");
        let pb::CreateProjectRequest { name } = req.into_inner();
        let name = access::name("name", &name)?;
        let project = self
            .store
            .create_project(&name, entry.details(serde_json::json!({ "name": name })))
            .await?;
        Ok(Response::new(pb::CreateProjectResponse {
            project: Some(project_to_pb(project)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ProjectService/ListProjects")]
    async fn list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListProjectsRequest {} = req.into_inner();
        let projects = self
            .store
            .list_projects(p.restricted.then_some(p.project_id))
            .await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: projects.into_iter().map(project_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ProjectService/GetProject")]
    async fn get_project(
        &self,
        req: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::GetProjectRequest { project_id } = req.into_inner();
        let id = visible(&p, &project_id)?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(project_to_pb(self.store.get_project(id).await?)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ProjectService/RenameProject")]
    async fn rename_project(
        &self,
        req: Request<pb::RenameProjectRequest>,
    ) -> Result<Response<pb::RenameProjectResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        let entry = access::audit(&p, req.extensions(), "project.rename");
        let pb::RenameProjectRequest { project_id, name } = req.into_inner();
        let id = visible(&p, &project_id)?;
        let name = access::name("name", &name)?;
        let project = self.store.rename_project(id, &name, entry).await?;
        Ok(Response::new(pb::RenameProjectResponse {
            project: Some(project_to_pb(project)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ProjectService/DeleteProject")]
    async fn delete_project(
        &self,
        req: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Owner)?;
        let entry = access::audit(&p, req.extensions(), "project.delete");
        let pb::DeleteProjectRequest { project_id } = req.into_inner();
        let id = visible(&p, &project_id)?;
        let result = self.store.delete_project(id, entry).await;
        // Keys of the project are gone and others moved: no cached lookup may outlive that.
        self.authn.invalidate();
        let deleted = result?;
        Ok(Response::new(pb::DeleteProjectResponse {
            project_id: id.to_string(),
            deleted_events: deleted.events,
            deleted_groups: deleted.groups,
        }))
    }
}
