//! `ReleaseService`: a release's files (source maps and minified sources) and artifact
//! bundles. `ingest::sourcemaps` places events' frames by them.

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    auth::{self, Scope},
    domain::cursor::{CreatedCursor, page_limit},
    domain::sourcemap::{self as maps, Assembly},
    error::Error,
    pb::{self, release_service_server::ReleaseService},
    store::{DebugFileInfo, ReleaseFileInfo},
};

fn file_to_pb(f: ReleaseFileInfo) -> pb::ReleaseFile {
    pb::ReleaseFile {
        id: f.id.to_string(),
        release: f.release,
        name: f.name,
        size: f.size,
        created_at: Some(convert::ts(f.created_at)),
        sha1: f.sha1,
        last_used_at: Some(convert::ts(f.last_used_at)),
    }
}

fn debug_file_to_pb(f: DebugFileInfo) -> pb::DebugFile {
    pb::DebugFile {
        id: f.id.to_string(),
        debug_id: f.debug_id,
        kind: f.kind,
        name: f.name,
        size: f.size,
        sha1: f.sha1,
        created_at: Some(convert::ts(f.created_at)),
        last_used_at: Some(convert::ts(f.last_used_at)),
    }
}

/// A request's debug id, as stored (lowercase, hyphenated); 400 when it is not a UUID.
fn debug_id(raw: &str) -> Result<String, Error> {
    maps::debug_id(raw).ok_or_else(|| Error::malformed("debug_id", "must be a UUID"))
}

#[tonic::async_trait]
impl ReleaseService for Api {
    #[tracing::instrument(skip_all, name = "faultline.v1.ReleaseService/UploadReleaseFile")]
    async fn upload_release_file(
        &self,
        req: Request<pb::UploadReleaseFileRequest>,
    ) -> Result<Response<pb::UploadReleaseFileResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::UploadReleaseFileRequest {
            release,
            name,
            content,
        } = req.into_inner();
        let (release, name) = (release.trim(), name.trim());
        maps::check_upload(release, name, &content)?;
        let file = self
            .store
            .put_release_file(p.project_id, release, name, content)
            .await?;
        self.sourcemaps.forget(p.project_id, release);
        Ok(Response::new(pb::UploadReleaseFileResponse {
            file: Some(file_to_pb(file)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ReleaseService/ListReleaseFiles")]
    async fn list_release_files(
        &self,
        req: Request<pb::ListReleaseFilesRequest>,
    ) -> Result<Response<pb::ListReleaseFilesResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let release = req.get_ref().release.trim();
        if release.is_empty() {
            return Err(Error::required("release").into());
        }
        let files = self.store.list_release_files(p.project_id, release).await?;
        Ok(Response::new(pb::ListReleaseFilesResponse {
            files: files.into_iter().map(file_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ReleaseService/DeleteReleaseFile")]
    async fn delete_release_file(
        &self,
        req: Request<pb::DeleteReleaseFileRequest>,
    ) -> Result<Response<pb::DeleteReleaseFileResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::DeleteReleaseFileRequest { release, id } = req.into_inner();
        let id = convert::uuid("id", &id)?;
        self.store
            .delete_release_file(p.project_id, release.trim(), id)
            .await?;
        self.sourcemaps.forget(p.project_id, release.trim());
        Ok(Response::new(pb::DeleteReleaseFileResponse {}))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ReleaseService/ListDebugFiles")]
    async fn list_debug_files(
        &self,
        req: Request<pb::ListDebugFilesRequest>,
    ) -> Result<Response<pb::ListDebugFilesResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListDebugFilesRequest {
            debug_id: id,
            limit,
            cursor,
        } = req.into_inner();
        let id = match id.trim() {
            "" => None,
            raw => Some(debug_id(raw)?),
        };
        let cursor = CreatedCursor::decode(&cursor)?;
        let (files, next) = self
            .store
            .list_debug_files(p.project_id, id.as_deref(), cursor, page_limit(limit))
            .await?;
        Ok(Response::new(pb::ListDebugFilesResponse {
            files: files.into_iter().map(debug_file_to_pb).collect(),
            next_cursor: next.map(|c| c.encode()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ReleaseService/DeleteDebugFiles")]
    async fn delete_debug_files(
        &self,
        req: Request<pb::DeleteDebugFilesRequest>,
    ) -> Result<Response<pb::DeleteDebugFilesResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let id = debug_id(&req.get_ref().debug_id)?;
        let deleted = self.store.delete_debug_files(p.project_id, &id).await?;
        self.sourcemaps.forget_debug_id(p.project_id, &id);
        Ok(Response::new(pb::DeleteDebugFilesResponse {
            deleted: u32::try_from(deleted).unwrap_or(u32::MAX),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ReleaseService/UploadChunks")]
    async fn upload_chunks(
        &self,
        req: Request<pb::UploadChunksRequest>,
    ) -> Result<Response<pb::UploadChunksResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let chunks = req.into_inner().chunks;
        if let Some(i) = chunks
            .iter()
            .position(|c| c.is_empty() || c.len() > maps::CHUNK_MAX)
        {
            return Err(Error::invalid_field(
                &format!("chunks[{i}]"),
                format!("must hold from 1 byte to {} MiB", maps::CHUNK_MAX >> 20),
                "INVALID_SIZE",
            )
            .into());
        }
        let chunks: Vec<(String, Vec<u8>)> = chunks
            .into_iter()
            .map(|c| (maps::sha1_hex(&c), c))
            .collect();
        let checksums = chunks.iter().map(|c| c.0.clone()).collect();
        self.store.put_chunks(p.project_id, chunks).await?;
        Ok(Response::new(pb::UploadChunksResponse { checksums }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.ReleaseService/AssembleBundle")]
    async fn assemble_bundle(
        &self,
        req: Request<pb::AssembleBundleRequest>,
    ) -> Result<Response<pb::AssembleBundleResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::AssembleBundleRequest {
            checksum,
            chunks,
            release,
        } = req.into_inner();
        let chunks = maps::checksums(&chunks);
        let stored = self.store.chunks(p.project_id, &chunks).await?;
        let release = release.trim().to_owned();
        // Putting the bundle together and unzipping it is CPU work: off the async workers.
        let assembly = {
            let (release, chunks) = (release.clone(), chunks.clone());
            tokio::task::spawn_blocking(move || {
                maps::assemble(&release, &checksum, &chunks, &stored)
            })
            .await
            .map_err(|e| Error::Internal(format!("bundle task: {e}")))?
        };
        let files = match assembly {
            Err(detail) => {
                return Ok(Response::new(pb::AssembleBundleResponse {
                    state: "error".into(),
                    detail,
                    ..Default::default()
                }));
            }
            Ok(Assembly::Missing(missing_chunks)) => {
                return Ok(Response::new(pb::AssembleBundleResponse {
                    state: "not_found".into(),
                    missing_chunks,
                    ..Default::default()
                }));
            }
            Ok(Assembly::Files(files)) => files,
        };
        let mut stored_files = Vec::new();
        let mut debug_ids = Vec::new();
        for f in files {
            if let Some(id) = f.kept_by_debug_id() {
                self.store
                    .put_debug_file(p.project_id, id, &f.kind, &f.url, f.content.clone())
                    .await?;
                if !debug_ids.iter().any(|d| d == id) {
                    debug_ids.push(id.to_owned());
                }
            }
            if !release.is_empty() {
                let file = self
                    .store
                    .put_release_file(p.project_id, &release, &f.url, f.content)
                    .await?;
                stored_files.push(file_to_pb(file));
            }
        }
        if !release.is_empty() {
            self.sourcemaps.forget(p.project_id, &release);
        }
        for id in &debug_ids {
            self.sourcemaps.forget_debug_id(p.project_id, id);
        }
        let stale = chrono::Utc::now().timestamp_millis() - 86_400_000;
        self.store.drop_chunks(p.project_id, &chunks, stale).await?;
        Ok(Response::new(pb::AssembleBundleResponse {
            state: "ok".into(),
            files: stored_files,
            debug_ids,
            ..Default::default()
        }))
    }
}
