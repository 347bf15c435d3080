//! `SettingsService`: retention and the ingest policy here; API keys, the team and the audit
//! log in `access`; the project policy and integrations in `security`.

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
        let entry = super::access::audit(&p, req.extensions(), "retention.set");
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
        let details = serde_json::json!({"days": days,
            "auto_export_before_cleanup": auto_export_before_cleanup,
            "export_destination": destination});
        let target = format!("project:{}", p.project_id);
        security::record_change(self, entry, p.project_id, target, details).await?;
        Ok(Response::new(pb::SetRetentionResponse {
            retention: Some(convert::retention_to_pb(r)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/GetDsn")]
    async fn get_dsn(
        &self,
        req: Request<pb::GetDsnRequest>,
    ) -> Result<Response<pb::GetDsnResponse>, Status> {
        super::sentry::get_dsn(self, req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/GetIngestPolicy")]
    async fn get_ingest_policy(
        &self,
        req: Request<pb::GetIngestPolicyRequest>,
    ) -> Result<Response<pb::GetIngestPolicyResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::GetIngestPolicyRequest {} = req.into_inner();
        let on = self.store.anonymous_loopback_ingest(p.project_id).await?;
        Ok(Response::new(pb::GetIngestPolicyResponse {
            policy: Some(pb::IngestPolicy {
                anonymous_loopback_ingest: on,
            }),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/SetIngestPolicy")]
    async fn set_ingest_policy(
        &self,
        req: Request<pb::SetIngestPolicyRequest>,
    ) -> Result<Response<pb::SetIngestPolicyResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Admin)?;
        let entry = super::access::audit(&p, req.extensions(), "ingest_policy.set");
        let pb::SetIngestPolicyRequest {
            anonymous_loopback_ingest,
        } = req.into_inner();
        let on = self
            .store
            .set_anonymous_loopback_ingest(p.project_id, anonymous_loopback_ingest)
            .await?;
        let details = serde_json::json!({ "anonymous_loopback_ingest": on });
        let target = format!("project:{}", p.project_id);
        security::record_change(self, entry, p.project_id, target, details).await?;
        Ok(Response::new(pb::SetIngestPolicyResponse {
            policy: Some(pb::IngestPolicy {
                anonymous_loopback_ingest: on,
            }),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/CreateApiKey")]
    async fn create_api_key(
        &self,
        req: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        self.create_api_key_op(req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/ListApiKeys")]
    async fn list_api_keys(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        self.list_api_keys_op(req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/RevokeApiKey")]
    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        self.revoke_api_key_op(req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/ListMembers")]
    async fn list_members(
        &self,
        req: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        self.list_members_op(req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/InviteMember")]
    async fn invite_member(
        &self,
        req: Request<pb::InviteMemberRequest>,
    ) -> Result<Response<pb::InviteMemberResponse>, Status> {
        self.invite_member_op(req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/AcceptInvite")]
    async fn accept_invite(
        &self,
        req: Request<pb::AcceptInviteRequest>,
    ) -> Result<Response<pb::AcceptInviteResponse>, Status> {
        self.accept_invite_op(req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/UpdateMember")]
    async fn update_member(
        &self,
        req: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::UpdateMemberResponse>, Status> {
        self.update_member_op(req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/RemoveMember")]
    async fn remove_member(
        &self,
        req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        self.remove_member_op(req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.SettingsService/ListAuditLog")]
    async fn list_audit_log(
        &self,
        req: Request<pb::ListAuditLogRequest>,
    ) -> Result<Response<pb::ListAuditLogResponse>, Status> {
        self.list_audit_log_op(req).await
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
