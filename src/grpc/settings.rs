use std::path::Path;

use tonic::{Request, Response, Status};

use super::{Api, convert, security};
use crate::{
    auth::{self, Scope},
    error::Error,
    pb::{self, settings_service_server::SettingsService},
};

/// Longest retention accepted, in days (100 years).
const MAX_RETENTION_DAYS: u32 = 36_500;

#[tonic::async_trait]
impl SettingsService for Api {
    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/GetRetention")]
    async fn get_retention(
        &self,
        req: Request<pb::GetRetentionRequest>,
    ) -> Result<Response<pb::GetRetentionResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::GetRetentionRequest {} = req.into_inner();
        let r = self.store.get_retention(p.project_id).await?;
        Ok(Response::new(pb::GetRetentionResponse {
            retention: Some(convert::retention_to_pb(r)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/SetRetention")]
    async fn set_retention(
        &self,
        req: Request<pb::SetRetentionRequest>,
    ) -> Result<Response<pb::SetRetentionResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        let pb::SetRetentionRequest {
            days,
            auto_export_before_cleanup,
            export_destination,
        } = req.into_inner();
        let destination = export_destination.trim();
        if days > MAX_RETENTION_DAYS {
            return Err(Error::invalid_field(
                "days",
                format!("must be between 0 and {MAX_RETENTION_DAYS}"),
                "OUT_OF_RANGE",
            )
            .into());
        }
        if auto_export_before_cleanup && destination.is_empty() {
            return Err(Error::invalid_field(
                "export_destination",
                "is required when auto_export_before_cleanup is true",
                "REQUIRED",
            )
            .into());
        }
        if !destination.is_empty() && !Path::new(destination).is_absolute() {
            return Err(Error::invalid_field(
                "export_destination",
                "must be an absolute directory path",
                "INVALID_PATH",
            )
            .into());
        }
        let r = self
            .store
            .set_retention(p.project_id, days, auto_export_before_cleanup, destination)
            .await?;
        Ok(Response::new(pb::SetRetentionResponse {
            retention: Some(convert::retention_to_pb(r)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/GetProjectPolicy")]
    async fn get_project_policy(
        &self,
        req: Request<pb::GetProjectPolicyRequest>,
    ) -> Result<Response<pb::GetProjectPolicyResponse>, Status> {
        security::get_policy(self, req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/SetProjectPolicy")]
    async fn set_project_policy(
        &self,
        req: Request<pb::SetProjectPolicyRequest>,
    ) -> Result<Response<pb::SetProjectPolicyResponse>, Status> {
        security::set_policy(self, req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/ListIntegrations")]
    async fn list_integrations(
        &self,
        req: Request<pb::ListIntegrationsRequest>,
    ) -> Result<Response<pb::ListIntegrationsResponse>, Status> {
        security::list_integrations(self, req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/SetIntegration")]
    async fn set_integration(
        &self,
        req: Request<pb::SetIntegrationRequest>,
    ) -> Result<Response<pb::SetIntegrationResponse>, Status> {
        security::set_integration(self, req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/DeleteIntegration")]
    async fn delete_integration(
        &self,
        req: Request<pb::DeleteIntegrationRequest>,
    ) -> Result<Response<pb::DeleteIntegrationResponse>, Status> {
        security::delete_integration(self, req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/TestIntegration")]
    async fn test_integration(
        &self,
        req: Request<pb::TestIntegrationRequest>,
    ) -> Result<Response<pb::TestIntegrationResponse>, Status> {
        security::test_integration(self, req).await
    }
}
