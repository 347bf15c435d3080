//! Per-project security policies (rate-limit overrides, scrub fields, allowed origins, inbound
//! filters), the counts of events the filters dropped, and notification integrations.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::{
    Store, db_err,
    entity::{filtered_event, integration, project_setting},
};
use crate::{
    domain::{
        inbound::Reason,
        model::from_millis,
        policy::{ProjectPolicy, RateOverrides},
    },
    error::Error,
    integrations::{Config, Integration, Kind, Status},
};

fn policy(m: project_setting::Model) -> ProjectPolicy {
    let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    let rate = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
    ProjectPolicy {
        rate: RateOverrides {
            ingest_per_minute: rate(m.rate_limit_ingest),
            analytics_per_minute: rate(m.rate_limit_analytics),
            general_per_minute: rate(m.rate_limit_general),
        },
        scrub_fields: list(&m.scrub_fields),
        allowed_origins: list(&m.allowed_origins),
        inbound: serde_json::from_str(&m.inbound_filters).unwrap_or_default(),
    }
}

fn integration(m: integration::Model) -> Result<Integration, Error> {
    let kind = Kind::parse(&m.name)
        .ok_or_else(|| Error::Internal(format!("unknown stored integration {:?}", m.name)))?;
    Ok(Integration {
        config: Config::from_json(kind, &m.config)?,
        status: Status::parse(&m.status).unwrap_or(Status::Configured),
        last_test: m.last_test_at.map(from_millis),
        last_test_error: m.last_test_error,
        created_at: from_millis(m.created_at),
        updated_at: from_millis(m.updated_at),
    })
}

impl Store {
    /// Adds events the inbound filters dropped: (project, day since the epoch, reason) → count.
    pub async fn add_filtered(
        &self,
        counts: &std::collections::BTreeMap<(Uuid, i64, Reason), u64>,
    ) -> Result<(), Error> {
        if counts.is_empty() {
            return Ok(());
        }
        let rows: Vec<filtered_event::ActiveModel> = counts
            .iter()
            .map(
                |(&(project, day, reason), &n)| filtered_event::ActiveModel {
                    project_id: Set(project),
                    day: Set(day),
                    reason: Set(reason.as_str().to_owned()),
                    count: Set(i64::try_from(n).unwrap_or(i64::MAX)),
                },
            )
            .collect();
        use filtered_event::Column as C;
        self.upsert_rows(
            rows,
            OnConflict::columns([C::ProjectId, C::Day, C::Reason])
                .value(
                    C::Count,
                    Expr::cust(r#""filtered_events"."count" + excluded."count""#),
                )
                .to_owned(),
        )
        .await
    }

    /// Deletes the counts of filtered events of days before `day` (days since the epoch).
    pub async fn forget_filtered_before(&self, day: i64) -> Result<u64, Error> {
        let txn = self.begin_write().await?;
        let gone =
            super::delete_rows::<filtered_event::Entity>(&txn, filtered_event::Column::Day.lt(day))
                .await?;
        txn.commit().await.map_err(db_err)?;
        Ok(gone)
    }

    /// Events the project's inbound filters dropped since `since_day` (days since the epoch),
    /// per reason.
    pub async fn filtered_since(
        &self,
        project_id: Uuid,
        since_day: i64,
    ) -> Result<Vec<(Reason, u64)>, Error> {
        let rows = filtered_event::Entity::find()
            .filter(filtered_event::Column::ProjectId.eq(project_id))
            .filter(filtered_event::Column::Day.gte(since_day))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(Reason::ALL
            .into_iter()
            .map(|r| {
                let n = rows
                    .iter()
                    .filter(|m| m.reason == r.as_str())
                    .map(|m| u64::try_from(m.count).unwrap_or(0))
                    .sum();
                (r, n)
            })
            .collect())
    }

    /// The policy of one project (the defaults when none was ever set).
    pub async fn get_policy(&self, project_id: Uuid) -> Result<ProjectPolicy, Error> {
        Ok(project_setting::Entity::find_by_id(project_id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(policy)
            .unwrap_or_default())
    }

    /// Every stored policy, for the in-memory cache.
    pub async fn all_policies(&self) -> Result<Vec<(Uuid, ProjectPolicy)>, Error> {
        Ok(project_setting::Entity::find()
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|m| (m.project_id, policy(m)))
            .collect())
    }

    pub async fn set_policy(
        &self,
        project_id: Uuid,
        p: &ProjectPolicy,
    ) -> Result<ProjectPolicy, Error> {
        let rate = |v: Option<u32>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        let json = |l: &Vec<String>| serde_json::to_string(l).unwrap_or_else(|_| "[]".into());
        let model = project_setting::ActiveModel {
            project_id: Set(project_id),
            rate_limit_ingest: Set(rate(p.rate.ingest_per_minute)),
            rate_limit_analytics: Set(rate(p.rate.analytics_per_minute)),
            rate_limit_general: Set(rate(p.rate.general_per_minute)),
            scrub_fields: Set(json(&p.scrub_fields)),
            allowed_origins: Set(json(&p.allowed_origins)),
            inbound_filters: Set(serde_json::to_string(&p.inbound).unwrap_or_else(|_| "{}".into())),
            updated_at: Set(Utc::now().timestamp_millis()),
        };
        let txn = self.begin_write().await?;
        let exists = project_setting::Entity::find_by_id(project_id)
            .one(&txn)
            .await
            .map_err(db_err)?
            .is_some();
        let saved = if exists {
            model.update(&txn).await
        } else {
            model.insert(&txn).await
        }
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(policy(saved))
    }

    pub async fn list_integrations(&self, project_id: Uuid) -> Result<Vec<Integration>, Error> {
        integration::Entity::find()
            .filter(integration::Column::ProjectId.eq(project_id))
            .order_by_asc(integration::Column::Name)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(integration)
            .collect()
    }

    pub async fn get_integration(
        &self,
        project_id: Uuid,
        kind: Kind,
    ) -> Result<Integration, Error> {
        integration::Entity::find_by_id((project_id, kind.as_str().to_owned()))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound {
                what: "integration",
            })
            .and_then(integration)
    }

    /// Creates or replaces a channel's settings. A change of settings makes the channel
    /// untested again. `merge` gets the stored settings (if any) to keep unchanged secrets.
    pub async fn put_integration(
        &self,
        project_id: Uuid,
        config: Config,
        merge: impl FnOnce(Config, Option<&Config>) -> Config,
    ) -> Result<Integration, Error> {
        let now = Utc::now().timestamp_millis();
        let kind = config.kind();
        let txn = self.begin_write().await?;
        let existing = integration::Entity::find_by_id((project_id, kind.as_str().to_owned()))
            .one(&txn)
            .await
            .map_err(db_err)?;
        let old = existing
            .as_ref()
            .map(|m| Config::from_json(kind, &m.config))
            .transpose()?;
        let config = merge(config, old.as_ref());
        config.validate()?;
        let unchanged = old.as_ref() == Some(&config);
        let model = integration::ActiveModel {
            project_id: Set(project_id),
            name: Set(kind.as_str().to_owned()),
            config: Set(config.to_json()),
            status: Set(match (&existing, unchanged) {
                (Some(m), true) => m.status.clone(),
                _ => Status::Configured.as_str().to_owned(),
            }),
            last_test_at: Set(existing.as_ref().and_then(|m| m.last_test_at)),
            last_test_error: Set(existing.as_ref().and_then(|m| m.last_test_error.clone())),
            created_at: Set(existing.as_ref().map_or(now, |m| m.created_at)),
            updated_at: Set(now),
        };
        let saved = if existing.is_some() {
            model.update(&txn).await
        } else {
            model.insert(&txn).await
        }
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        integration(saved)
    }

    pub async fn delete_integration(&self, project_id: Uuid, kind: Kind) -> Result<(), Error> {
        let res = integration::Entity::delete_by_id((project_id, kind.as_str().to_owned()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound {
                what: "integration",
            });
        }
        Ok(())
    }

    /// Records the outcome of a test delivery.
    pub async fn record_integration_test(
        &self,
        project_id: Uuid,
        kind: Kind,
        outcome: Result<(), String>,
    ) -> Result<Integration, Error> {
        let now = Utc::now().timestamp_millis();
        let (status, error) = match outcome {
            Ok(()) => (Status::Connected, None),
            Err(e) => (Status::Failed, Some(e)),
        };
        let res = integration::Entity::update_many()
            .col_expr(
                integration::Column::Status,
                sea_orm::sea_query::Expr::value(status.as_str()),
            )
            .col_expr(
                integration::Column::LastTestAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .col_expr(
                integration::Column::LastTestError,
                sea_orm::sea_query::Expr::value(error),
            )
            .filter(integration::Column::ProjectId.eq(project_id))
            .filter(integration::Column::Name.eq(kind.as_str()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound {
                what: "integration",
            });
        }
        self.get_integration(project_id, kind).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::store::store_without_indexer;

    /// Counts add up per day and reason, are read per reason since a day, and old days go.
    #[tokio::test]
    async fn filtered_counts_add_up_and_old_days_go() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let counts = BTreeMap::from([
            ((project, 10, Reason::Localhost), 2),
            ((project, 100, Reason::Localhost), 3),
            ((project, 100, Reason::Release), 1),
        ]);
        store.add_filtered(&counts).await.unwrap();
        store.add_filtered(&counts).await.unwrap();
        let since = |day| {
            let store = &store;
            async move {
                store
                    .filtered_since(project, day)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            since(0).await,
            [(Reason::Localhost, 10), (Reason::Release, 2)]
        );
        assert_eq!(
            since(50).await,
            [(Reason::Localhost, 6), (Reason::Release, 2)]
        );
        assert_eq!(store.forget_filtered_before(50).await.unwrap(), 1);
        assert_eq!(
            since(0).await,
            [(Reason::Localhost, 6), (Reason::Release, 2)]
        );
    }
}
