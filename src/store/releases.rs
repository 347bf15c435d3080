//! The releases a project's events have named (recorded by the ingest writer, see `write`),
//! with their counts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    Store, db_err,
    entity::{group, group_stat, release},
};
use crate::{domain::model::from_millis, error::Error};

/// A release with its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub version: String,
    pub first_seen: DateTime<Utc>,
    /// Events counted into its groups' per-release counts.
    pub event_count: u64,
    /// Groups with an event of it.
    pub issue_count: u64,
    /// Groups whose first event named it.
    pub new_issue_count: u64,
}

impl Store {
    /// The project's `limit` releases first seen last, latest first, with their counts.
    pub async fn list_releases(
        &self,
        project_id: Uuid,
        limit: u64,
    ) -> Result<Vec<ReleaseInfo>, Error> {
        let rows = release::Entity::find()
            .filter(release::Column::ProjectId.eq(project_id))
            .order_by_desc(release::Column::FirstSeen)
            .order_by_desc(release::Column::Version)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // Per release: the sum of its groups' counts, and how many groups.
        let versions: Vec<String> = rows.iter().map(|r| r.version.clone()).collect();
        let project_groups = Query::select()
            .column(group::Column::Id)
            .from(group::Entity)
            .and_where(Expr::col(group::Column::ProjectId).eq(project_id))
            .to_owned();
        let counts: HashMap<String, (i64, i64)> = group_stat::Entity::find()
            .select_only()
            .column(group_stat::Column::Value)
            // PostgreSQL sums BIGINT into NUMERIC.
            .column_as(Expr::cust(r#"CAST(SUM("count") AS BIGINT)"#), "events")
            .column_as(Expr::col(group_stat::Column::GroupId).count(), "issues")
            .filter(group_stat::Column::Dim.eq("release"))
            .filter(group_stat::Column::Value.is_in(versions.clone()))
            .filter(group_stat::Column::GroupId.in_subquery(project_groups))
            .group_by(group_stat::Column::Value)
            .into_tuple::<(String, Option<i64>, i64)>()
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|(v, events, issues)| (v, (events.unwrap_or(0), issues)))
            .collect();
        let new_issues: HashMap<String, i64> = group::Entity::find()
            .select_only()
            .column(group::Column::FirstRelease)
            .column_as(group::Column::Id.count(), "issues")
            .filter(group::Column::ProjectId.eq(project_id))
            .filter(group::Column::FirstRelease.is_in(versions))
            .group_by(group::Column::FirstRelease)
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .collect();
        Ok(rows
            .into_iter()
            .map(|r| {
                let (events, issues) = counts.get(&r.version).copied().unwrap_or((0, 0));
                let new_issues = new_issues.get(&r.version).copied().unwrap_or(0);
                ReleaseInfo {
                    first_seen: from_millis(r.first_seen),
                    version: r.version,
                    event_count: u64::try_from(events).unwrap_or(0),
                    issue_count: u64::try_from(issues).unwrap_or(0),
                    new_issue_count: u64::try_from(new_issues).unwrap_or(0),
                }
            })
            .collect())
    }
}
