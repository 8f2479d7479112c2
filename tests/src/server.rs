//! The local server, started in-process for one test on a fresh backend (a temporary data
//! directory, or a uniquely named table, queue and bucket on moto).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bazaar_adapters::config::{Backend as BackendKind, BackendConfig};
use bazaar_api::App;
use tokio::sync::oneshot;

use crate::recording::RecordingStore;

/// The JWT secret of test servers (never used outside tests).
pub const TEST_JWT_SECRET: &str = "test-only:Qx7#Lm2$Vb9!Rt4&Wz6*Np1@Ks8^Hd3";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

pub struct TestServer {
    pub base_url: String,
    pub app: App,
    pub backend: Backend,
    max_receives: u32,
    /// The emulator's SDK configuration and this server's queue-name prefix (AWS only).
    aws: Option<(aws_config::SdkConfig, String)>,
    data_dir: Option<PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// A name no other test uses (S3 bucket rules: lower-case letters, digits, dashes).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, 5).await
    }

    /// Starts a server whose queues dead-letter after `max_receives`.
    pub async fn start_with(backend: Backend, max_receives: u32) -> Self {
        Self::launch(backend, max_receives, false).await.0
    }

    /// Starts a server whose state store records every call made to it (see
    /// [`RecordingStore`]); the recorder is returned beside the server.
    pub async fn start_recording(backend: Backend) -> (Self, Arc<RecordingStore>) {
        let (server, recorder) = Self::launch(backend, 5, true).await;
        let recorder = recorder.unwrap_or_else(|| panic!("the store is not recorded"));
        (server, recorder)
    }

    async fn launch(
        backend: Backend,
        max_receives: u32,
        record: bool,
    ) -> (Self, Option<Arc<RecordingStore>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("cannot bind loopback: {error}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("{error}"));
        let base_url = format!("http://{address}");
        let mut data_dir = None;
        let mut aws = None;
        let (config, sdk) = match backend {
            Backend::Embedded => {
                let dir = std::env::temp_dir().join(unique("bazaar-test"));
                data_dir = Some(dir.clone());
                let config = BackendConfig {
                    backend: BackendKind::Embedded {
                        data_dir: dir,
                        public_url: base_url.clone(),
                    },
                    max_receives,
                };
                (config, None)
            }
            Backend::Aws => {
                let sdk = crate::moto::sdk_config().await;
                let table = unique("table");
                let bucket = unique("bucket");
                let prefix = format!("{}-", unique("q"));
                use bazaar_adapters::aws::provision;
                provision::create_table(&sdk, &table)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                provision::create_bucket(&sdk, &bucket)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let (url, dlq) =
                    provision::create_queue(&sdk, &prefix, "notifications", max_receives, 30)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                let queue_urls = HashMap::from([
                    ("notifications".to_owned(), url),
                    ("notifications-dlq".to_owned(), dlq),
                ]);
                aws = Some((sdk.clone(), prefix.clone()));
                let config = BackendConfig {
                    backend: BackendKind::Aws {
                        endpoint_url: Some(crate::moto::endpoint()),
                        table,
                        bucket,
                        queue_urls,
                        queue_prefix: prefix,
                        assets_url: None,
                    },
                    max_receives,
                };
                (config, Some(sdk))
            }
        };
        let lookup = |name: &str| match name {
            "BAZAAR_JWT_SECRET" => Some(TEST_JWT_SECRET.to_owned()),
            _ => None,
        };
        let (app, recorder) = if record {
            let (app, recorder) = recorded_app(&config, sdk).await;
            (app, Some(recorder))
        } else {
            let app = App::build_with(&config, &lookup, sdk, true)
                .await
                .unwrap_or_else(|error| panic!("cannot build the app: {error}"));
            (app, None)
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bazaar::serve(listener, app.clone(), async move {
            let _ = stopped.await;
        }));
        let server = Self {
            base_url,
            app,
            backend,
            max_receives,
            aws,
            data_dir,
            shutdown: Some(shutdown),
            task: Some(task),
        };
        (server, recorder)
    }

    /// Makes sure a queue (and its dead-letter queue) exists: SQS queues are created on moto
    /// with this server's redrive limit; embedded queues exist implicitly.
    pub async fn ensure_queue(&self, name: &str) {
        if let Some((sdk, prefix)) = &self.aws {
            bazaar_adapters::aws::provision::create_queue(sdk, prefix, name, self.max_receives, 30)
                .await
                .unwrap_or_else(|error| panic!("cannot create queue {name}: {error}"));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the server and waits for it (and its workers) to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The app over the configured adapters, its state store wrapped in a [`RecordingStore`],
/// issuing tokens signed with [`TEST_JWT_SECRET`] (as [`App::build_with`] does for tests).
async fn recorded_app(
    config: &BackendConfig,
    sdk: Option<aws_config::SdkConfig>,
) -> (App, Arc<RecordingStore>) {
    use bazaar_shared::auth::{SigningSecret, TokenService, TokenSettings};
    let mut connected = bazaar_adapters::config::connect_with(config, sdk)
        .await
        .unwrap_or_else(|error| panic!("cannot connect the adapters: {error}"));
    let recorder = RecordingStore::new(connected.ports.store.clone());
    connected.ports.store = recorder.clone();
    let secret = SigningSecret::new(TEST_JWT_SECRET.as_bytes().to_vec())
        .unwrap_or_else(|error| panic!("the test secret is refused: {error}"));
    let tokens = TokenService::new(TokenSettings {
        secret,
        issuer: "bazaar".to_owned(),
        audience: "bazaar-api".to_owned(),
        ttl_seconds: 3600,
    });
    (App::assemble(connected, Some(tokens)), recorder)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(dir) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
