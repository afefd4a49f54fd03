//! Broadcasts: the publish tokens broadcasters publish with, and what publishing with one
//! may do. Only the application's backend (the API secret, or a server token signed with it)
//! manages tokens.

use super::{NewCall, Result, ServiceError, Services, StartOptions, require_server};
use crate::auth::Caller;
use crate::domain::{
    BroadcastSource, Cid, PublishToken, Recording, RecordingType, StreamName, Timestamp,
    TokenChanges, TokenSpec, UserId, stream_cid,
};
use crate::secret::Secret;
use crate::store::{StoreError, TokenOrder};

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
        })
    }

    /// Starts recording the source `source_id` of the broadcast `grant` allowed, in the
    /// stream's active session: one file, until the source stops publishing.
    pub async fn record_broadcast(
        &self,
        grant: &BroadcastGrant,
        source_id: &str,
    ) -> Result<Recording> {
        let (call, call_type) = self.load_call(&grant.cid).await?;
        let options = StartOptions {
            beside_others: true,
            broadcast: Some(BroadcastSource {
                publisher: grant.publisher.clone(),
                source_id: source_id.to_owned(),
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
