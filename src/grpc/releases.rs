//! `ReleaseService`: a release's files (source maps and minified sources), and the mapping of
//! an event's minified frames through them when the event is read.

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Api, convert};
use crate::{
    auth::{self, Scope},
    domain::sourcemap::{self as maps, Assembly, Position, maps_wanted, place_all, sources_beside},
    error::Error,
    pb::{self, release_service_server::ReleaseService},
    store::{ReleaseFileInfo, Store},
};

fn file_to_pb(f: ReleaseFileInfo) -> pb::ReleaseFile {
    pb::ReleaseFile {
        id: f.id.to_string(),
        release: f.release,
        name: f.name,
        size: f.size,
        created_at: Some(convert::ts(f.created_at)),
        sha1: f.sha1,
    }
}

/// The frames of an exception and of the exceptions chained to it.
fn frames_of<'a>(e: &'a mut pb::ExceptionInfo, out: &mut Vec<&'a mut pb::Frame>) {
    out.extend(e.frames.iter_mut());
    for c in &mut e.chained {
        frames_of(c, out);
    }
}

/// Places each frame of `exception` (and of those chained to it) that a source map of
/// `release` covers in the original source; the frame as sent is kept in its `minified`.
pub async fn symbolicate(
    store: &Store,
    project_id: Uuid,
    release: &str,
    exception: &mut pb::ExceptionInfo,
) -> Result<(), Error> {
    if release.is_empty() {
        return Ok(());
    }
    let mut frames = Vec::new();
    frames_of(exception, &mut frames);
    frames.retain(|f| f.lineno > 0 && f.minified.is_none());
    let positions: Vec<Position> = frames
        .iter()
        .map(|f| Position {
            filename: f.filename.clone(),
            function: f.function.clone(),
            lineno: f.lineno,
            colno: f.colno,
        })
        .collect();
    let mut files = store
        .release_file_contents(project_id, release, &maps_wanted(&positions))
        .await?;
    if files.is_empty() {
        return Ok(());
    }
    // The minified sources, only beside maps there are.
    let sources = sources_beside(files.keys());
    files.extend(
        store
            .release_file_contents(project_id, release, &sources)
            .await?,
    );
    // Reading a map costs in proportion to its size (up to 20 MiB): off the async workers.
    let placed = tokio::task::spawn_blocking(move || place_all(&files, &positions))
        .await
        .map_err(|e| Error::Internal(format!("source map task: {e}")))?;
    for (frame, o) in frames.into_iter().zip(placed) {
        let Some(o) = o else { continue };
        let sent = std::mem::take(frame);
        *frame = pb::Frame {
            filename: o.filename,
            function: o.function.unwrap_or_else(|| sent.function.clone()),
            module: sent.module.clone(),
            lineno: o.lineno,
            colno: o.colno,
            in_app: Some(o.in_app),
            context_line: o.context_line.unwrap_or_default(),
            minified: Some(Box::new(sent)),
        };
    }
    Ok(())
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
        Ok(Response::new(pb::DeleteReleaseFileResponse {}))
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
        for (url, content) in files {
            let file = self
                .store
                .put_release_file(p.project_id, &release, &url, content)
                .await?;
            stored_files.push(file_to_pb(file));
        }
        let stale = chrono::Utc::now().timestamp_millis() - 86_400_000;
        self.store.drop_chunks(p.project_id, &chunks, stale).await?;
        Ok(Response::new(pb::AssembleBundleResponse {
            state: "ok".into(),
            files: stored_files,
            ..Default::default()
        }))
    }
}
