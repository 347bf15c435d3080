//! `InsightsService`: health, offset-paged groups, statistics, trends, performance, service
//! checks, metrics and uptime. Read-heavy answers go through the store's in-process cache for
//! the durations the Error Logging System documents; any write drops them.

use std::time::{Duration, Instant};

use chrono::Utc;
use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    auth::{self, Scope},
    domain::insights::{self, Bucket, Period},
    error::Error,
    monitor,
    pb::{self, insights_service_server::InsightsService},
};

const STATS_TTL: Duration = Duration::from_secs(300);
const TRENDS_TTL: Duration = Duration::from_secs(300);
const PERFORMANCE_TTL: Duration = Duration::from_secs(60);
const SERVICES_TTL: Duration = Duration::from_secs(30);
const METRICS_TTL: Duration = Duration::from_secs(30);
const UPTIME_TTL: Duration = Duration::from_secs(300);
/// Longest a health probe may take before the database counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Writer lag above which the writer counts as unhealthy.
const WRITER_LAG_LIMIT_MS: u64 = 5_000;
const MAX_PAGE: u32 = 100;

impl Api {
    async fn uptime_figures(&self) -> Result<insights::Uptime, Error> {
        self.store
            .cached("uptime".into(), UPTIME_TTL, || async {
                let runs = self.store.runs().await?;
                Ok(insights::uptime(&runs, self.monitor.run_id, Utc::now()))
            })
            .await
    }

    /// (ok, round trip in ms) of one probe of the database.
    async fn probe_database(&self) -> (bool, f64) {
        let started = Instant::now();
        let ok = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, self.store.health_probe()).await,
            Ok(Ok(()))
        );
        (ok, started.elapsed().as_secs_f64() * 1000.0)
    }
}

#[tonic::async_trait]
impl InsightsService for Api {
    #[tracing::instrument(skip_all, name = "faultline.v1.InsightsService/GetHealth")]
    async fn get_health(
        &self,
        req: Request<pb::GetHealthRequest>,
    ) -> Result<Response<pb::GetHealthResponse>, Status> {
        let pb::GetHealthRequest {} = req.into_inner();
        let (ok, _) = self.probe_database().await;
        Ok(Response::new(pb::GetHealthResponse {
            status: if ok { "ok" } else { "degraded" }.into(),
            database_ok: ok,
            timestamp: Some(convert::ts(Utc::now())),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.InsightsService/QueryGroups")]
    async fn query_groups(
        &self,
        req: Request<pb::QueryGroupsRequest>,
    ) -> Result<Response<pb::QueryGroupsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::QueryGroupsRequest {
            limit,
            offset,
            level,
            source,
        } = req.into_inner();
        if limit > MAX_PAGE {
            return Err(Error::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
                "OUT_OF_RANGE",
            )
            .into());
        }
        let limit = if limit == 0 { 50 } else { limit };
        let level = convert::level_from_pb("level", level)?;
        let source = source.trim();
        let (groups, total) = self
            .store
            .query_groups(
                p.project_id,
                level,
                (!source.is_empty()).then_some(source),
                u64::from(offset),
                u64::from(limit),
            )
            .await?;
        Ok(Response::new(pb::QueryGroupsResponse {
            groups: groups.into_iter().map(convert::group_to_pb).collect(),
            total,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.InsightsService/GetStats")]
    async fn get_stats(
        &self,
        req: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::GetStatsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::GetStatsRequest {} = req.into_inner();
        let f = self
            .store
            .cached(format!("stats:{}", p.project_id), STATS_TTL, || {
                self.store.stats_figures(p.project_id, Utc::now())
            })
            .await?;
        Ok(Response::new(pb::GetStatsResponse {
            total_errors: f.groups,
            resolved_errors: f.resolved,
            errors_today: f.first_seen_today,
            errors_this_week: f.first_seen_7d,
            errors_this_month: f.first_seen_30d,
            error_rate_24h: f.events_24h as f64 / 24.0,
            resolution_rate: if f.groups == 0 {
                0.0
            } else {
                f.resolved as f64 / f.groups as f64 * 100.0
            },
            avg_resolution_seconds: f.avg_resolution_ms.unwrap_or(0.0).max(0.0) / 1000.0,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.InsightsService/GetTrends")]
    async fn get_trends(
        &self,
        req: Request<pb::GetTrendsRequest>,
    ) -> Result<Response<pb::GetTrendsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::GetTrendsRequest { period, group_by } = req.into_inner();
        let period = Period::parse(&period)?;
        let bucket = Bucket::parse(&group_by)?;
        let key = format!(
            "trends:{}:{}:{}",
            p.project_id,
            period.as_str(),
            bucket.as_str()
        );
        let points = self
            .store
            .cached(key, TRENDS_TTL, || async {
                let now = Utc::now();
                let since = insights::trend_start(period, bucket, now);
                let f = self.store.trend_figures(p.project_id, since).await?;
                Ok(insights::trend(
                    period,
                    bucket,
                    now,
                    &f.hourly_events,
                    &f.resolved_at,
                    &f.fatal_at,
                ))
            })
            .await?;
        Ok(Response::new(pb::GetTrendsResponse {
            period: period.as_str().into(),
            group_by: bucket.as_str().into(),
            data_points: points
                .into_iter()
                .map(|pt| pb::TrendBucket {
                    timestamp: Some(convert::ts(pt.start)),
                    error_count: pt.errors,
                    resolved_count: pt.resolved,
                    critical_count: pt.critical,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.InsightsService/GetPerformance")]
    async fn get_performance(
        &self,
        req: Request<pb::GetPerformanceRequest>,
    ) -> Result<Response<pb::GetPerformanceResponse>, Status> {
        auth::require(req.extensions(), Scope::Read)?;
        let pb::GetPerformanceRequest {} = req.into_inner();
        let uptime = self.uptime_figures().await?;
        let answer = self
            .store
            .cached("performance".into(), PERFORMANCE_TTL, || async {
                let window = chrono::Duration::hours(1);
                let t = self.monitor.totals_since(Utc::now() - window);
                let minutes = (self.monitor.uptime_secs() / 60.0).clamp(1.0, 60.0);
                let error_rate = if t.requests == 0 {
                    0.0
                } else {
                    t.server_errors as f64 / t.requests as f64 * 100.0
                };
                Ok(pb::GetPerformanceResponse {
                    avg_response_time_ms: if t.requests == 0 {
                        0.0
                    } else {
                        t.latency_us as f64 / t.requests as f64 / 1000.0
                    },
                    error_rate_percent: error_rate,
                    throughput_rpm: t.requests as f64 / minutes,
                    availability_percent: uptime.percent_30d,
                    performance_score: (uptime.percent_30d / 100.0
                        * (1.0 - error_rate / 100.0)
                        * 10.0)
                        .clamp(0.0, 10.0),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.InsightsService/GetServices")]
    async fn get_services(
        &self,
        req: Request<pb::GetServicesRequest>,
    ) -> Result<Response<pb::GetServicesResponse>, Status> {
        auth::require(req.extensions(), Scope::Read)?;
        let pb::GetServicesRequest {} = req.into_inner();
        let answer = self
            .store
            .cached("services".into(), SERVICES_TTL, || async {
                let uptime = self
                    .uptime_figures()
                    .await
                    .map(|u| u.percent_30d)
                    .unwrap_or(0.0);
                let now = Some(convert::ts(Utc::now()));
                let health = |ok: bool| if ok { "healthy" } else { "unhealthy" }.to_owned();
                let (db_ok, db_ms) = self.probe_database().await;
                let (depth, capacity) = self.ingest.queue_depth();
                let stats = self.ingest.writer_stats();
                let lag = stats.lag_ms.load(std::sync::atomic::Ordering::Relaxed);
                let committed = stats.committed.load(std::sync::atomic::Ordering::Relaxed);
                let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);
                let queue_ok = depth * 10 < capacity * 9;
                let writer_ok = self.ingest.writer_running() && lag <= WRITER_LAG_LIMIT_MS;
                let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                let services = vec![
                    pb::ServiceHealth {
                        name: "Database".into(),
                        status: health(db_ok),
                        uptime_percent: uptime,
                        response_time_ms: db_ms,
                        last_checked: now,
                        details: Default::default(),
                    },
                    pb::ServiceHealth {
                        name: "Ingest queue".into(),
                        status: health(queue_ok),
                        uptime_percent: uptime,
                        response_time_ms: 0.0,
                        last_checked: now,
                        details: [
                            ("depth".to_owned(), as_i64(depth as u64)),
                            ("capacity".to_owned(), as_i64(capacity as u64)),
                        ]
                        .into(),
                    },
                    pb::ServiceHealth {
                        name: "Ingest writer".into(),
                        status: health(writer_ok),
                        uptime_percent: uptime,
                        response_time_ms: lag as f64,
                        last_checked: now,
                        details: [
                            ("lag_ms".to_owned(), as_i64(lag)),
                            ("committed".to_owned(), as_i64(committed)),
                            ("batches".to_owned(), as_i64(batches)),
                        ]
                        .into(),
                    },
                ];
                let all_ok = db_ok && queue_ok && writer_ok;
                Ok(pb::GetServicesResponse {
                    services,
                    overall_health: health(all_ok),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.InsightsService/GetMetrics")]
    async fn get_metrics(
        &self,
        req: Request<pb::GetMetricsRequest>,
    ) -> Result<Response<pb::GetMetricsResponse>, Status> {
        auth::require(req.extensions(), Scope::Read)?;
        let pb::GetMetricsRequest { timeframe } = req.into_inner();
        let (label, window) = match timeframe.trim() {
            "" | "1h" => ("1h", chrono::Duration::hours(1)),
            "6h" => ("6h", chrono::Duration::hours(6)),
            "24h" => ("24h", chrono::Duration::hours(24)),
            "7d" => ("7d", chrono::Duration::days(7)),
            "30d" => ("30d", chrono::Duration::days(30)),
            _ => {
                return Err(Error::invalid_field(
                    "timeframe",
                    "must be one of 1h, 6h, 24h, 7d, 30d",
                    "INVALID_ENUM",
                )
                .into());
            }
        };
        let answer = self
            .store
            .cached(format!("metrics:{label}"), METRICS_TTL, || async {
                let m = &self.monitor;
                let t = m.totals_since(Utc::now() - window);
                let minutes =
                    (m.uptime_secs() / 60.0).clamp(1.0, window.num_minutes().max(1) as f64);
                let net = monitor::network_bytes();
                Ok(pb::GetMetricsResponse {
                    cpu_usage_percent: m.cpu_percent(),
                    memory_usage_percent: monitor::host_memory_percent(),
                    disk_usage_percent: monitor::disk_percent(m.data_dir()),
                    network_bytes_in: net.map(|n| n.0),
                    network_bytes_out: net.map(|n| n.1),
                    active_connections: m.in_flight(),
                    requests_per_minute: t.requests as f64 / minutes,
                    process_rss_bytes: monitor::process_rss_bytes(),
                    timeframe: label.into(),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.InsightsService/GetUptime")]
    async fn get_uptime(
        &self,
        req: Request<pb::GetUptimeRequest>,
    ) -> Result<Response<pb::GetUptimeResponse>, Status> {
        auth::require(req.extensions(), Scope::Read)?;
        let pb::GetUptimeRequest {} = req.into_inner();
        let u = self.uptime_figures().await?;
        Ok(Response::new(pb::GetUptimeResponse {
            current_uptime_hours: self.monitor.uptime_secs() / 3600.0,
            uptime_percent_24h: u.percent_24h,
            uptime_percent_7d: u.percent_7d,
            uptime_percent_30d: u.percent_30d,
            incidents_count: u.incidents_30d,
            last_downtime: u
                .last_downtime
                .map(|ms| convert::ts(crate::domain::model::from_millis(ms))),
        }))
    }
}
