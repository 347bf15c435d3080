//! `AlertService`: alert rules and incidents. Rule changes are audited like other settings;
//! incidents are day-to-day work and are not.

use tonic::{Request, Response, Status};

use super::{
    Api,
    convert::{self, ts},
    security::record_change,
};
use crate::{
    auth::{self, Scope},
    domain::alerts::{Incident, IncidentFields, Rule, RuleFields, format_window, incident_status},
    pb::{self, alert_service_server::AlertService},
};

fn rule_to_pb(r: Rule) -> pb::AlertRule {
    let Rule {
        id,
        project_id: _,
        spec,
        last_triggered,
        created_at,
        updated_at,
    } = r;
    pb::AlertRule {
        id: id.to_string(),
        name: spec.name,
        condition: spec.condition,
        threshold: spec.threshold,
        time_window: format_window(spec.window_secs),
        enabled: spec.enabled,
        notifications: spec
            .notifications
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect(),
        severity: spec.severity,
        environment: spec.environment.unwrap_or_default(),
        level: spec
            .level
            .map(|l| l.as_str().to_owned())
            .unwrap_or_default(),
        tags: spec.tags.into_iter().collect(),
        last_triggered: last_triggered.map(ts),
        created_at: Some(ts(created_at)),
        updated_at: Some(ts(updated_at)),
    }
}

fn rule_fields(f: Option<pb::AlertRuleFields>) -> RuleFields {
    let pb::AlertRuleFields {
        name,
        condition,
        threshold,
        time_window,
        notifications,
        enabled,
        severity,
        environment,
        level,
        tags,
    } = f.unwrap_or_default();
    RuleFields {
        name,
        condition,
        threshold,
        time_window,
        notifications: notifications.map(|l| l.channels),
        enabled,
        severity,
        environment,
        level,
        tags: tags.map(|t| t.tags.into_iter().collect()),
    }
}

fn incident_to_pb(i: Incident) -> pb::Incident {
    let Incident {
        id,
        project_id: _,
        rule_id,
        spec,
        created_at,
        updated_at,
        resolved_at,
    } = i;
    pb::Incident {
        id: id.to_string(),
        title: spec.title,
        severity: spec.severity,
        status: spec.status,
        description: spec.description,
        assigned_to: spec.assigned_to,
        rule_id: rule_id.map(|r| r.to_string()).unwrap_or_default(),
        created_at: Some(ts(created_at)),
        updated_at: Some(ts(updated_at)),
        resolved_at: resolved_at.map(ts),
    }
}

fn incident_fields(f: Option<pb::IncidentFields>) -> IncidentFields {
    let pb::IncidentFields {
        title,
        severity,
        status,
        description,
        assigned_to,
    } = f.unwrap_or_default();
    IncidentFields {
        title,
        severity,
        status,
        description,
        assigned_to,
    }
}

/// The audit details of a rule: its settings (rules hold no secrets).
fn rule_details(r: &pb::AlertRule) -> serde_json::Value {
    serde_json::json!({
        "name": r.name, "condition": r.condition, "threshold": r.threshold,
        "time_window": r.time_window, "enabled": r.enabled,
        "notifications": r.notifications, "severity": r.severity,
        "environment": r.environment, "level": r.level, "tags": r.tags,
    })
}

#[tonic::async_trait]
impl AlertService for Api {
    #[tracing::instrument(skip_all, name = "faultline.v1.AlertService/ListAlertRules")]
    async fn list_alert_rules(
        &self,
        req: Request<pb::ListAlertRulesRequest>,
    ) -> Result<Response<pb::ListAlertRulesResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListAlertRulesRequest {} = req.into_inner();
        let rules = self.store.list_rules(p.project_id).await?;
        Ok(Response::new(pb::ListAlertRulesResponse {
            rules: rules.into_iter().map(rule_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.AlertService/CreateAlertRule")]
    async fn create_alert_rule(
        &self,
        req: Request<pb::CreateAlertRuleRequest>,
    ) -> Result<Response<pb::CreateAlertRuleResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let entry = super::access::audit(&p, req.extensions(), "alert_rule.create");
        let pb::CreateAlertRuleRequest { rule } = req.into_inner();
        let spec = rule_fields(rule).resolve(None)?;
        let stored = rule_to_pb(self.store.create_rule(p.project_id, &spec).await?);
        let target = format!("alert_rule:{}", stored.id);
        record_change(self, entry, p.project_id, target, rule_details(&stored)).await?;
        Ok(Response::new(pb::CreateAlertRuleResponse {
            rule: Some(stored),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.AlertService/UpdateAlertRule")]
    async fn update_alert_rule(
        &self,
        req: Request<pb::UpdateAlertRuleRequest>,
    ) -> Result<Response<pb::UpdateAlertRuleResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let entry = super::access::audit(&p, req.extensions(), "alert_rule.update");
        let pb::UpdateAlertRuleRequest { id, rule } = req.into_inner();
        let id = convert::uuid("id", &id)?;
        let current = self.store.get_rule(p.project_id, id).await?;
        let spec = rule_fields(rule).resolve(Some(&current.spec))?;
        let updated = self.store.update_rule(p.project_id, id, &spec).await?;
        crate::jobs::alerts::settle_changed_rule(
            &self.store,
            &current,
            &updated,
            chrono::Utc::now(),
        )
        .await?;
        let stored = rule_to_pb(updated);
        let target = format!("alert_rule:{id}");
        record_change(self, entry, p.project_id, target, rule_details(&stored)).await?;
        Ok(Response::new(pb::UpdateAlertRuleResponse {
            rule: Some(stored),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.AlertService/DeleteAlertRule")]
    async fn delete_alert_rule(
        &self,
        req: Request<pb::DeleteAlertRuleRequest>,
    ) -> Result<Response<pb::DeleteAlertRuleResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let entry = super::access::audit(&p, req.extensions(), "alert_rule.delete");
        let pb::DeleteAlertRuleRequest { id } = req.into_inner();
        let id = convert::uuid("id", &id)?;
        self.store.delete_rule(p.project_id, id).await?;
        let target = format!("alert_rule:{id}");
        record_change(self, entry, p.project_id, target, serde_json::json!({})).await?;
        Ok(Response::new(pb::DeleteAlertRuleResponse {}))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.AlertService/ListIncidents")]
    async fn list_incidents(
        &self,
        req: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListIncidentsRequest { status } = req.into_inner();
        let status = match status.trim() {
            "" => None,
            s => Some(incident_status("status", s)?),
        };
        let all = self
            .store
            .list_incidents(p.project_id, status.as_deref())
            .await?;
        Ok(Response::new(pb::ListIncidentsResponse {
            incidents: all.into_iter().map(incident_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.AlertService/CreateIncident")]
    async fn create_incident(
        &self,
        req: Request<pb::CreateIncidentRequest>,
    ) -> Result<Response<pb::CreateIncidentResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::CreateIncidentRequest { incident } = req.into_inner();
        let spec = incident_fields(incident).resolve(None)?;
        let stored = self
            .store
            .create_incident(uuid::Uuid::new_v4(), p.project_id, None, &spec)
            .await?;
        Ok(Response::new(pb::CreateIncidentResponse {
            incident: Some(incident_to_pb(stored)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.AlertService/UpdateIncident")]
    async fn update_incident(
        &self,
        req: Request<pb::UpdateIncidentRequest>,
    ) -> Result<Response<pb::UpdateIncidentResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::UpdateIncidentRequest { id, incident } = req.into_inner();
        let id = convert::uuid("id", &id)?;
        let current = self.store.get_incident(p.project_id, id).await?;
        let spec = incident_fields(incident).resolve(Some(&current.spec))?;
        let stored = self.store.update_incident(&current, &spec).await?;
        Ok(Response::new(pb::UpdateIncidentResponse {
            incident: Some(incident_to_pb(stored)),
        }))
    }
}
