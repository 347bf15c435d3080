//! The fix workflow of groups and the per-project ingest policy (anonymous loopback ingest).

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use uuid::Uuid;

use super::{
    Store,
    activity::{self, Actor},
    db_err,
    entity::group,
};
use crate::{
    domain::{GroupStatus, activity::Change, model::Group, workflow::WorkflowStage},
    error::Error,
};

const ANON_COLUMN: &str = "anonymous_loopback_ingest";

impl Store {
    /// Moves a group to `to` if the documented workflow allows it from the stage it is in.
    /// The update is conditional on that stage, so two concurrent moves cannot both pass the
    /// check; DEPLOYED also resolves the group. Returns the group and the stage it left.
    pub async fn transition_workflow(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        to: WorkflowStage,
        by: Option<&Actor>,
    ) -> Result<(Group, WorkflowStage), Error> {
        let current = self.get_group(project_id, group_id).await?;
        let from = current.workflow_stage;
        from.check_transition(to)?;
        let mut update = group::Entity::update_many()
            .col_expr(group::Column::WorkflowStage, Expr::value(to.as_str()))
            .filter(group::Column::Id.eq(group_id))
            .filter(group::Column::ProjectId.eq(project_id))
            .filter(group::Column::WorkflowStage.eq(from.as_str()));
        if to == WorkflowStage::Deployed {
            update = update
                .col_expr(
                    group::Column::Status,
                    Expr::value(GroupStatus::Resolved.as_str()),
                )
                .col_expr(
                    group::Column::ResolvedAt,
                    Expr::value(Utc::now().timestamp_millis()),
                )
                .col_expr(group::Column::Regressed, Expr::value(false));
        }
        let txn = self.begin_write().await?;
        let res = update.exec(&txn).await.map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::Conflict(format!(
                "the group left {} while this move was made; read it again",
                from.as_str()
            )));
        }
        let change = Change::Workflow {
            from: from.as_str().to_owned(),
            to: to.as_str().to_owned(),
        };
        activity::record(&txn, &[(project_id, group_id)], by, &change).await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok((self.get_group(project_id, group_id).await?, from))
    }

    /// Whether the project accepts keyless ingest from loopback.
    pub async fn anonymous_loopback_ingest(&self, project_id: Uuid) -> Result<bool, Error> {
        let stmt = Query::select()
            .expr_as(Expr::col(Alias::new(ANON_COLUMN)), Alias::new("v"))
            .from(Alias::new("projects"))
            .and_where(Expr::col(Alias::new("id")).eq(project_id))
            .to_owned();
        let row = self
            .db
            .query_one(&stmt)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound { what: "project" })?;
        row.try_get::<bool>("", "v").map_err(db_err)
    }

    pub async fn set_anonymous_loopback_ingest(
        &self,
        project_id: Uuid,
        on: bool,
    ) -> Result<bool, Error> {
        let stmt = Query::update()
            .table(Alias::new("projects"))
            .value(Alias::new(ANON_COLUMN), on)
            .and_where(Expr::col(Alias::new("id")).eq(project_id))
            .to_owned();
        let res = self.db.execute(&stmt).await.map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(Error::NotFound { what: "project" });
        }
        self.forget_anonymous_ingest_project();
        Ok(on)
    }

    /// The project that takes keyless ingest from loopback: the oldest with the switch on.
    pub async fn anonymous_loopback_project(&self) -> Result<Option<Uuid>, Error> {
        let stmt = Query::select()
            .column(Alias::new("id"))
            .from(Alias::new("projects"))
            .and_where(Expr::col(Alias::new(ANON_COLUMN)).eq(true))
            .order_by(Alias::new("created_at"), Order::Asc)
            .order_by(Alias::new("id"), Order::Asc)
            .limit(1)
            .to_owned();
        match self.db.query_one(&stmt).await.map_err(db_err)? {
            Some(row) => Ok(Some(row.try_get::<Uuid>("", "id").map_err(db_err)?)),
            None => Ok(None),
        }
    }
}
