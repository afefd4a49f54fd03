//! Assembling and running a reel server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{self, AppState};
use crate::auth::Keys;
use crate::bus::Bus;
use crate::config::{Config, Credentials};
use crate::domain::{BUILTIN_CALL_TYPES, CallType, CallTypeName, Timestamp};
use crate::media::Media;
use crate::metrics::Metrics;
use crate::recorders::Recorders;
use crate::service::{ServiceError, ServiceSettings, Services, Storages};
use crate::storage::{LocalDisk, S3Bucket, S3Options, StorageError};
use crate::store::{Store, StoreError};
use crate::webhooks::{Dispatcher, Receivers};

/// How long a failing upload is retried before the file is given up (and kept locally).
pub const UPLOAD_RETRY_FOR: Duration = Duration::from_secs(24 * 3600);
/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A directory or socket could not be set up.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The default storage could not be set up.
    #[error("default storage: {0}")]
    Storage(#[from] StorageError),
    /// Start-up work on recordings failed.
    #[error("recovering recordings: {0}")]
    Service(#[from] ServiceError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let context = context.into();
    move |source| StartError::Io { context, source }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system provides randomness");
    hex::encode(buf)
}

/// The configured credentials, or the ones kept in the database (generated on first start,
/// printed once).
pub async fn credentials(config: &Config, store: &Store) -> Result<Keys, StoreError> {
    if let Some(Credentials {
        api_key,
        api_secret,
    }) = &config.credentials
    {
        return Ok(Keys::new(api_key.clone(), api_secret.expose()));
    }
    if let Some((key, secret)) = store.credentials().await? {
        return Ok(Keys::new(key, secret));
    }
    let ((key, secret), generated) = store
        .keep_credentials(&random_hex(8), &random_hex(32))
        .await?;
    if generated {
        let shown = crate::telemetry::print(&format!(
            "Generated API credentials for this installation (shown once; they are kept in the database):\n  \
             api_key:    {key}\n  api_secret: {secret}\n"
        ));
        if let Err(e) = shown {
            warn!(error = %e, "the generated API credentials could not be shown; `reel token` still signs with them");
        }
    }
    Ok(Keys::new(key, secret))
}

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The base URL in links.
    pub public_url: String,
    /// Its services (for tools and tests).
    pub services: Services,
    /// Its media plane.
    pub media: Media,
    /// Stops accepting API requests.
    stop_api: CancellationToken,
    /// The API server.
    api: JoinHandle<()>,
    /// Stops the webhook dispatcher and the uploader.
    stop_workers: CancellationToken,
    /// The webhook dispatcher and the uploader.
    workers: JoinSet<()>,
}

impl Server {
    /// Opens the store, binds the API address and starts serving and the background workers.
    pub async fn start(config: Config, recorders: Recorders) -> Result<Server, StartError> {
        let recordings_dir = config.recordings_dir();
        let work_dir = recordings_dir.join(".work");
        for dir in [&config.data_dir, &recordings_dir, &work_dir] {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(io(format!("cannot create {}", dir.display())))?;
        }
        let recordings_dir = absolute(recordings_dir)?;
        let work_dir = absolute(work_dir)?;
        let store = Store::open(config.database_url.expose()).await?;
        let keys = credentials(&config, &store).await?;
        let now = Timestamp::now();
        let builtin: Vec<CallType> = BUILTIN_CALL_TYPES
            .iter()
            .map(|n| {
                CallType::new(
                    CallTypeName::parse(*n).expect("built-in names are valid"),
                    now,
                )
            })
            .collect();
        store.ensure_call_types(&builtin).await?;
        // Sessions live in the media plane of this process; any left open died with the last one.
        let ended = store.end_all_sessions(now).await?;
        if ended > 0 {
            warn!(ended, "ended call sessions left open by the previous run");
        }

        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(io(format!("cannot listen on {}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(io("cannot read the bound address"))?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        // A browser on this machine reaches the API on loopback when it listens everywhere.
        let local_url = match addr.ip() {
            ip if ip.is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
            _ => format!("http://{addr}"),
        };

        let local = Arc::new(LocalDisk::new(
            recordings_dir,
            public_url.clone(),
            keys.url_signer(),
        ));
        let default_s3 = match &config.s3 {
            Some(s3) => Some(Arc::new(S3Bucket::new(S3Options {
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
                region: s3.region.clone(),
                endpoint: s3.endpoint.clone(),
                credentials: s3.credentials.clone(),
                path_style: s3.path_style,
            })?)),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let bus = Bus::new(metrics.bus.clone());
        let dispatcher = Dispatcher::new(
            store.clone(),
            keys.api_key().to_owned(),
            keys.secret().to_owned(),
            config.webhook_timeout,
            (config.retry, config.webhook_retry_for),
            metrics.clone(),
        );
        let services = Services::new(
            store,
            keys,
            Receivers::new(config.webhook_urls.clone()),
            dispatcher.waker(),
            Storages::new(local, default_s3),
            recorders,
            metrics.clone(),
            ServiceSettings {
                download_url_ttl: config.download_url_ttl,
                broadcast_split: config.broadcast_split,
                upload_retry_for: UPLOAD_RETRY_FOR,
                retry: config.retry,
                work_dir,
                session_grace: config.session_grace,
                local_url,
            },
            bus.clone(),
            Box::new(api::Shapes::new(public_url.clone())),
        );
        services.recover_recordings().await?;

        let stop_workers = CancellationToken::new();
        let mut workers = JoinSet::new();
        workers.spawn(dispatcher.run(stop_workers.clone()));
        workers.spawn(services.uploader().run(stop_workers.clone()));
        workers.spawn(services.clone().watch_recorders(stop_workers.clone()));
        // The media plane reports what happens in calls; the services act on it.
        let (activity, reports) = tokio::sync::mpsc::unbounded_channel();
        let media = Media::start(config.media.clone(), bus, metrics, activity)
            .await
            .map_err(io("cannot open the media plane's UDP socket"))?;
        workers.spawn(services.clone().follow_media(reports, stop_workers.clone()));
        let app = api::router(AppState {
            services: services.clone(),
            media: media.clone(),
            public_url: public_url.clone(),
        });
        let stop_api = CancellationToken::new();
        let stop = stop_api.clone();
        let api = tokio::spawn(async move {
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = serve.await {
                warn!(error = %e, "the API server stopped");
            }
        });
        info!(%addr, %public_url, database = services.store().backend_name(), "reel is serving");
        Ok(Server {
            addr,
            public_url,
            services,
            media,
            stop_api,
            api,
            stop_workers,
            workers,
        })
    }

    /// Stops gracefully, each step within a grace period: stops accepting requests and lets
    /// those in flight finish; asks the recorders to finish their files; stops the workers.
    /// Queued webhooks and uploads stay queued for the next start.
    pub async fn shutdown(mut self) {
        self.stop_api.cancel();
        let api = self.api.abort_handle();
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.api)
            .await
            .is_err()
        {
            warn!("requests still running after the grace period; ending them");
            api.abort();
        }
        self.services.stop_recorders(SHUTDOWN_GRACE).await;
        self.stop_workers.cancel();
        let drain = async { while self.workers.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            warn!("workers still busy after the grace period; ending them");
            self.workers.abort_all();
        }
        self.services.store().close().await;
        info!("reel stopped");
    }

    /// Stops everything at once, as a crash would (for tests of durability).
    pub async fn kill(mut self) {
        self.api.abort();
        self.services.abort_recorders();
        self.workers.abort_all();
        let _ = (&mut self.api).await;
        while self.workers.join_next().await.is_some() {}
        self.services.store().close().await;
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        info!("shutting down");
        self.shutdown().await;
    }
}

fn absolute(p: PathBuf) -> Result<PathBuf, StartError> {
    std::path::absolute(&p).map_err(io(format!("cannot resolve {}", p.display())))
}
