//! Broadcasts: the publish tokens broadcasters publish with, what publishing with one may
//! do, and the record files their recordings make. Only the application's backend (the API
//! secret, or a server token signed with it) manages tokens and record files.

use tracing::info;

use super::{NewCall, Result, ServiceError, Services, StartOptions, require_server};
use crate::auth::{Caller, constant_time_eq};
use crate::domain::recording::{POSTER_LAYER, THUMBNAILS_LAYER};
use crate::domain::{
    BroadcastSource, Cid, PublishToken, RecordFile, Recording, RecordingType, StreamName,
    Timestamp, TokenChanges, TokenSpec, UserId, stream_cid,
};
use crate::secret::Secret;
use crate::store::{FileState, RecordFileQuery, StoreError, StoredFile, TokenOrder};

/// What managing publish tokens is called in refusals.
const MANAGE: &str = "manage publish tokens";

/// A fresh token value: 64 lowercase hex digits (256 random bits).
fn new_token_value() -> Secret {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    Secret::from(hex::encode(bytes))
}

fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("there is no publish token {id}"))
}

/// What a broadcaster may publish.
#[derive(Clone, Debug)]
pub struct BroadcastGrant {
    /// The stream's call.
    pub cid: Cid,
    /// The user the broadcaster publishes as.
    pub publisher: UserId,
    /// Whether the token records its broadcasts.
    pub record: bool,
    /// The token's id.
    pub token_id: i64,
    /// Whether the token's broadcasts get pictures while recorded.
    pub thumbnails: bool,
}

impl Services {
    /// Checks that `value` is a publish token that may publish `stream` now (from the source
    /// `source_id`; one of several only if the token is multisource), and makes the stream's
    /// call if it is new.
    pub async fn broadcast(
        &self,
        value: &str,
        stream: &StreamName,
        source_id: &str,
    ) -> Result<BroadcastGrant> {
        let token =
            self.store().token_by_value(value).await?.ok_or_else(|| {
                ServiceError::Unauthorized("the publish token is not valid".into())
            })?;
        token
            .allows(stream, Timestamp::now())
            .map_err(|e| ServiceError::Forbidden(e.to_string()))?;
        if !source_id.is_empty() && !token.multisource {
            return Err(ServiceError::Invalid(
                "the publish token is not multisource: publish without sourceId".into(),
            ));
        }
        let cid = stream_cid(stream);
        let publisher = token.publisher();
        let new = NewCall {
            created_by: Some(publisher.clone()),
            ..NewCall::default()
        };
        self.get_or_create_call(&Caller::Server, &cid, new).await?;
        Ok(BroadcastGrant {
            cid,
            publisher,
            record: token.record,
            token_id: token.id,
            thumbnails: token.enable_thumbnails,
        })
    }

    /// Starts recording the source `source_id` of the broadcast `grant` allowed, in the
    /// stream's active session: one file, until the source stops publishing.
    pub async fn record_broadcast(
        &self,
        grant: &BroadcastGrant,
        source_id: &str,
    ) -> Result<Recording> {
        self.record_source(grant, source_id, false).await
    }

    /// Starts recording what follows a broadcast recording that reached its longest length,
    /// if its token still exists.
    pub(super) async fn continue_broadcast(&self, rec: &Recording) -> Result<()> {
        let mut tx = self.begin().await?;
        let file = tx.record_file_of(&rec.id).await?;
        let token = match &file {
            Some(f) => tx.get_token(f.token_id).await?,
            None => None,
        };
        self.commit(tx).await?;
        let (Some(file), Some(token)) = (file, token) else {
            return Err(ServiceError::NotFound(format!(
                "the broadcast of recording {} has no token any more",
                rec.id
            )));
        };
        token
            .allows(&file.stream, Timestamp::now())
            .map_err(|e| ServiceError::Forbidden(e.to_string()))?;
        let grant = BroadcastGrant {
            cid: rec.cid.clone(),
            publisher: token.publisher(),
            record: true,
            token_id: token.id,
            thumbnails: token.enable_thumbnails,
        };
        let next = self.record_source(&grant, &file.source_id, true).await?;
        info!(cid = %rec.cid, recording_id = %next.id, after = %rec.id, "broadcast recording goes on");
        Ok(())
    }

    async fn record_source(
        &self,
        grant: &BroadcastGrant,
        source_id: &str,
        continued: bool,
    ) -> Result<Recording> {
        let (call, call_type) = self.load_call(&grant.cid).await?;
        let options = StartOptions {
            beside_others: true,
            broadcast: Some(BroadcastSource {
                token_id: grant.token_id,
                publisher: grant.publisher.clone(),
                source_id: source_id.to_owned(),
                thumbnails: grant.thumbnails,
                split_after: self.inner.settings.broadcast_split,
                continued,
            }),
            ..StartOptions::default()
        };
        self.start_in_session(
            &grant.cid,
            RecordingType::Broadcast,
            call.settings(&call_type),
            call_type.external_storage,
            None,
            options,
        )
        .await
    }

    /// Checks that a viewer with `bearer` (if given) may watch `stream`, and makes the
    /// stream's call if it is new (a viewer may come before the broadcaster); the call.
    ///
    /// A stream only an active publish token covers can be broadcast, so only such a stream
    /// can be watched. If one of those tokens has `subscribe_requires_auth`, the viewer needs
    /// a token: the API secret or a token signed with it (the application's backend gives
    /// its viewers one; one limited to calls must list the stream's), or a publish token of
    /// the stream itself.
    pub async fn watch(&self, stream: &StreamName, bearer: Option<&str>) -> Result<Cid> {
        let now = Timestamp::now();
        let mut covering = Vec::new();
        for page in 0.. {
            let tokens = self
                .store()
                .list_tokens(TokenOrder::AddedOn, false, (page * 100, 100))
                .await?;
            let last = tokens.len() < 100;
            covering.extend(tokens.into_iter().filter(|t| t.allows(stream, now).is_ok()));
            if last {
                break;
            }
        }
        if covering.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "no active publish token covers stream {stream}"
            )));
        }
        if covering.iter().any(|t| t.subscribe_requires_auth) {
            let bearer = bearer.filter(|b| !b.is_empty()).ok_or_else(|| {
                ServiceError::Unauthorized(
                    "this stream needs a subscribe token: Authorization: Bearer <token>".into(),
                )
            })?;
            let cid = stream_cid(stream);
            let signed = match self.keys().bearer(Some(bearer)) {
                Ok(Caller::Server) => true,
                Ok(Caller::User(u)) => u.may_access(&cid),
                Err(_) => false,
            };
            let known = signed
                || covering
                    .iter()
                    .any(|t| constant_time_eq(t.token.expose().as_bytes(), bearer.as_bytes()));
            if !known {
                return Err(ServiceError::Unauthorized(
                    "the subscribe token is not valid".into(),
                ));
            }
        }
        let cid = stream_cid(stream);
        let new = NewCall {
            created_by: Some(covering[0].publisher()),
            ..NewCall::default()
        };
        self.get_or_create_call(&Caller::Server, &cid, new).await?;
        Ok(cid)
    }

    /// The user a broadcaster publishing with the token `value` publishes as, if it is one.
    pub async fn publisher_of(&self, value: &str) -> Result<Option<UserId>> {
        Ok(self
            .store()
            .token_by_value(value)
            .await?
            .map(|t| t.publisher()))
    }

    /// Makes a publish token of `spec`, with a fresh value.
    pub async fn create_token(&self, caller: &Caller, spec: TokenSpec) -> Result<PublishToken> {
        require_server(caller, MANAGE)?;
        spec.check()
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        Ok(self
            .store()
            .insert_token(&spec, &new_token_value(), Timestamp::now())
            .await?)
    }

    /// One publish token.
    pub async fn token(&self, caller: &Caller, id: i64) -> Result<PublishToken> {
        require_server(caller, MANAGE)?;
        self.store()
            .get_token(id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// A page of publish tokens: `limit` after the first `offset`, in `order`.
    pub async fn tokens(
        &self,
        caller: &Caller,
        order: TokenOrder,
        descending: bool,
        page: (u32, u32),
    ) -> Result<Vec<PublishToken>> {
        require_server(caller, MANAGE)?;
        Ok(self.store().list_tokens(order, descending, page).await?)
    }

    /// Changes a publish token (with `refresh`, gives it a fresh value); the token as it is
    /// now. `live` says whether one of its broadcasts is live now: `record` cannot change then.
    pub async fn update_token(
        &self,
        caller: &Caller,
        id: i64,
        (mut changes, refresh): (TokenChanges, bool),
        live: impl FnOnce(&PublishToken) -> bool,
    ) -> Result<PublishToken> {
        require_server(caller, MANAGE)?;
        if refresh {
            changes.token = Some(new_token_value());
        }
        let mut tx = self.begin().await?;
        let mut token = tx.get_token(id).await?.ok_or_else(|| not_found(id))?;
        let live = live(&token);
        token
            .apply(changes, live)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        if !tx.update_token(&token).await? {
            return Err(StoreError::Stale("publish token").into());
        }
        self.commit(tx).await?;
        Ok(token)
    }

    /// Deletes a publish token.
    pub async fn delete_token(&self, caller: &Caller, id: i64) -> Result<()> {
        require_server(caller, MANAGE)?;
        if self.store().delete_token(id).await? {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }
}

/// A stored file of a record file, with a fresh download link.
#[derive(Clone, Debug)]
pub struct Download {
    /// The link.
    pub url: String,
    /// When the link stops working.
    pub expires: Timestamp,
}

/// Why a record file was not deleted.
#[derive(Clone, Debug)]
pub struct NotDeleted {
    /// The record file.
    pub id: i64,
    /// Why.
    pub reason: String,
    /// Whether it does not exist (else it is still being recorded or uploaded).
    pub missing: bool,
}

/// Links to what a record file stored: its file, and the pictures taken of it.
#[derive(Clone, Debug, Default)]
pub struct RecordLinks {
    /// The recorded file.
    pub download: Option<Download>,
    /// The pictures taken while it was live, in time order.
    pub thumbnails: Vec<String>,
    /// The poster of its file.
    pub poster: Option<String>,
}

impl Services {
    /// The record files `q` asks for, with links to what each stored.
    pub async fn record_files(
        &self,
        caller: &Caller,
        q: &RecordFileQuery,
    ) -> Result<Vec<(RecordFile, RecordLinks)>> {
        require_server(caller, MANAGE_RECORDINGS)?;
        let files = self.store().record_files(q).await?;
        let ids: Vec<_> = files.iter().map(|f| f.recording.id.clone()).collect();
        let stored = self.store().files_of_all(&ids).await?;
        let mut linked = Vec::with_capacity(files.len());
        for f in files {
            let of_it: Vec<_> = stored
                .iter()
                .filter(|s| s.file.recording_id == f.recording.id)
                .collect();
            let links = self.record_links(&of_it).await?;
            linked.push((f, links));
        }
        Ok(linked)
    }

    /// One record file, with links to what it stored.
    pub async fn record_file(&self, caller: &Caller, id: i64) -> Result<(RecordFile, RecordLinks)> {
        require_server(caller, MANAGE_RECORDINGS)?;
        let file = self
            .store()
            .record_file(id)
            .await?
            .ok_or_else(|| record_not_found(id))?;
        let stored = self.store().files_of(&file.recording.id).await?;
        let links = self
            .record_links(&stored.iter().collect::<Vec<_>>())
            .await?;
        Ok((file, links))
    }

    /// Fresh links to the uploaded files of one record file.
    async fn record_links(&self, stored: &[&StoredFile]) -> Result<RecordLinks> {
        let now = Timestamp::now();
        let ttl = self.inner.settings.download_url_ttl;
        let mut links = RecordLinks::default();
        for f in stored.iter().filter(|f| f.state == FileState::Uploaded) {
            let target = self.target(&f.file.storage).await?;
            let url = target.url(&f.file.object_key, ttl, now).await?;
            match f.file.layer.as_deref() {
                Some(THUMBNAILS_LAYER) => links.thumbnails.push(url),
                Some(POSTER_LAYER) => links.poster = Some(url),
                _ if links.download.is_none() => {
                    links.download = Some(Download {
                        url,
                        expires: now.after(target.link_ttl(ttl)),
                    })
                }
                _ => {}
            }
        }
        Ok(links)
    }

    /// Deletes record files, each with its stored files: those deleted, and why the others
    /// were not (unknown, or still recording or uploading).
    pub async fn delete_record_files(
        &self,
        caller: &Caller,
        ids: &[i64],
    ) -> Result<(Vec<RecordFile>, Vec<NotDeleted>)> {
        require_server(caller, MANAGE_RECORDINGS)?;
        let (mut deleted, mut refused) = (Vec::new(), Vec::new());
        for &id in ids {
            match self.delete_record_file(id).await {
                Ok(file) => deleted.push(file),
                Err(ServiceError::NotFound(reason)) => refused.push(NotDeleted {
                    id,
                    reason,
                    missing: true,
                }),
                Err(ServiceError::Conflict(reason)) => refused.push(NotDeleted {
                    id,
                    reason,
                    missing: false,
                }),
                Err(e) => return Err(e),
            }
        }
        Ok((deleted, refused))
    }

    /// Every record file's id.
    pub async fn all_record_file_ids(&self, caller: &Caller) -> Result<Vec<i64>> {
        require_server(caller, MANAGE_RECORDINGS)?;
        let mut ids = Vec::new();
        loop {
            let q = RecordFileQuery {
                offset: ids.len() as u64,
                limit: 1000,
                ..RecordFileQuery::default()
            };
            let page = self.store().record_files(&q).await?;
            let last = page.len() < 1000;
            ids.extend(page.iter().map(|f| f.id));
            if last {
                return Ok(ids);
            }
        }
    }

    /// The bytes every broadcast recording's stored files take.
    pub async fn record_usage(&self, caller: &Caller) -> Result<u64> {
        require_server(caller, MANAGE_RECORDINGS)?;
        Ok(self
            .store()
            .stored_bytes(Some(RecordingType::Broadcast))
            .await?)
    }

    /// Deletes one record file, with its recording and stored files.
    async fn delete_record_file(&self, id: i64) -> Result<RecordFile> {
        let file = self
            .store()
            .record_file(id)
            .await?
            .ok_or_else(|| record_not_found(id))?;
        if !file.recording.state.is_final() {
            return Err(ServiceError::Conflict(format!(
                "record file {id} is still being recorded or uploaded"
            )));
        }
        self.forget_recording(&file.recording).await?;
        info!(record_file = id, recording_id = %file.recording.id, "record file deleted");
        Ok(file)
    }
}

/// What managing recordings is called in refusals.
const MANAGE_RECORDINGS: &str = "manage record files";

fn record_not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("there is no record file {id}"))
}
