//! The local server, started in-process for one test on a fresh backend (a temporary data
//! directory, or a uniquely named table, queue and bucket on moto).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bazaar::Local;
use bazaar_adapters::config::{Backend as BackendKind, BackendConfig};
use bazaar_adapters::notify::NotifySettings;
use bazaar_api::App;
use bazaar_api::settings::Settings;
use bazaar_shared::Ports;
use bazaar_shared::settings::Source;
use tokio::sync::oneshot;

use crate::recording::RecordingStore;
use crate::sent::Sent;

/// The JWT secret of test servers (never used outside tests).
pub const TEST_JWT_SECRET: &str = "test-only:Qx7#Lm2$Vb9!Rt4&Wz6*Np1@Ks8^Hd3";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

/// How long the test server's consumers hide a message they are handling: a failed message
/// is retried this much later.
pub const WORKER_VISIBILITY: std::time::Duration = std::time::Duration::from_secs(2);

pub struct TestServer {
    pub base_url: String,
    pub app: App,
    pub backend: Backend,
    max_receives: u32,
    /// The emulator's SDK configuration and this server's queue-name prefix (AWS only).
    aws: Option<(aws_config::SdkConfig, String)>,
    data_dir: Option<PathBuf>,
    /// Every message the channels accepted (see [`Sent`]).
    pub sent: Arc<Sent>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// How many shards the shop-wide partitions of every test server are spread over: enough that
/// a merge across shards, a page boundary inside one and the unsharded legacy partition are
/// all exercised, few enough that moto answers every sweep quickly.
pub const SHARDS: u16 = 8;

fn test_shards() -> bazaar_shared::shards::Shards {
    bazaar_shared::shards::Shards::new(SHARDS).expect("a valid shard count")
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
        Self::launch(backend, max_receives, Setup::Plain, None)
            .await
            .0
    }

    /// Starts a server whose ports are changed by `customise` first (fault injection).
    pub async fn start_customised(
        backend: Backend,
        max_receives: u32,
        customise: impl FnOnce(&mut Ports) + Send + 'static,
    ) -> Self {
        Self::launch(
            backend,
            max_receives,
            Setup::Customised(Box::new(customise)),
            None,
        )
        .await
        .0
    }

    /// Starts a server with these settings (`BAZAAR_*` variables) besides the test defaults.
    pub async fn start_with_settings(backend: Backend, settings: &[(&str, &str)]) -> Self {
        let settings = settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Self::launch(backend, 5, Setup::Settings(settings), None)
            .await
            .0
    }

    /// Starts a server whose state store records every call made to it (see
    /// [`RecordingStore`]); the recorder is returned beside the server.
    pub async fn start_recording(backend: Backend) -> (Self, Arc<RecordingStore>) {
        let (server, recorder) = Self::launch(backend, 5, Setup::Recorded, None).await;
        let recorder = recorder.expect("the store is not recorded");
        (server, recorder)
    }

    /// Starts a server whose notification settings (send budgets, SMS countries) are
    /// changed by `configure` first.
    pub async fn start_notifying(
        backend: Backend,
        max_receives: u32,
        configure: impl FnOnce(&mut NotifySettings) + Send + 'static,
    ) -> Self {
        Self::launch(
            backend,
            max_receives,
            Setup::Plain,
            Some(Box::new(configure)),
        )
        .await
        .0
    }

    async fn launch(
        backend: Backend,
        max_receives: u32,
        setup: Setup,
        configure: Option<ConfigureNotify>,
    ) -> (Self, Option<Arc<RecordingStore>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the test server");
        let address = listener
            .local_addr()
            .expect("read the test server's address");
        let base_url = format!("http://{address}");
        let mut data_dir = None;
        let mut aws = None;
        let (mut config, sdk) = match backend {
            Backend::Embedded => {
                let dir = std::env::temp_dir().join(unique("bazaar-test"));
                data_dir = Some(dir.clone());
                let config = BackendConfig {
                    backend: BackendKind::Embedded {
                        data_dir: dir,
                        public_url: base_url.clone(),
                    },
                    max_receives,
                    shards: test_shards(),
                    notify: NotifySettings {
                        email_from: NotifySettings::DEFAULT_FROM.to_owned(),
                        allow_private_targets: true,
                        smtp_url: None,
                        budget: Default::default(),
                        sms_countries: None,
                    },
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
                    .expect("create the test table");
                provision::create_bucket(&sdk, &bucket)
                    .await
                    .expect("create the test bucket");
                provision::verify_sender(&sdk, crate::moto::VERIFIED_SENDER)
                    .await
                    .expect("verify the test sender");
                let mut queue_urls = HashMap::new();
                for queue in bazaar_api::functions::queues() {
                    let (url, dlq) =
                        provision::create_queue(&sdk, &prefix, queue, max_receives, 30)
                            .await
                            .expect("create the functions' queues");
                    queue_urls.insert(queue.to_owned(), url);
                    queue_urls.insert(format!("{queue}-dlq"), dlq);
                }
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
                    shards: test_shards(),
                    // The tests' webhook receivers listen on loopback.
                    notify: NotifySettings {
                        email_from: crate::moto::VERIFIED_SENDER.to_owned(),
                        allow_private_targets: true,
                        smtp_url: None,
                        budget: Default::default(),
                        sms_countries: None,
                    },
                };
                (config, Some(sdk))
            }
        };
        if let Some(configure) = configure {
            configure(&mut config.notify);
        }
        let settings = match &setup {
            Setup::Settings(settings) => settings.clone(),
            _ => Vec::new(),
        };
        let sent = Arc::new(Sent::default());
        let (local, recorder) = match setup {
            Setup::Plain | Setup::Settings(_) => (
                customised_app(&config, sdk, &sent, &settings, |_| {}).await,
                None,
            ),
            Setup::Recorded => {
                let recorder = Arc::new(std::sync::Mutex::new(None));
                let slot = recorder.clone();
                let local =
                    customised_app(&config, sdk, &sent, &settings, move |ports: &mut Ports| {
                        let recording = RecordingStore::new(ports.store.clone());
                        ports.store = recording.clone();
                        if let Ok(mut slot) = slot.lock() {
                            *slot = Some(recording);
                        }
                    })
                    .await;
                let recorder = recorder.lock().ok().and_then(|mut slot| slot.take());
                (local, recorder)
            }
            Setup::Customised(customise) => (
                customised_app(&config, sdk, &sent, &settings, customise).await,
                None,
            ),
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = local.app.clone();
        let task = tokio::spawn(bazaar::serve_with(
            listener,
            local,
            async move {
                let _ = stopped.await;
            },
            WORKER_VISIBILITY,
        ));
        let server = Self {
            base_url,
            app,
            backend,
            max_receives,
            aws,
            data_dir,
            sent,
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

    /// The data directory of an embedded server.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data_dir.as_deref()
    }

    /// The emulator's SDK configuration (AWS only).
    pub fn sdk(&self) -> Option<&aws_config::SdkConfig> {
        self.aws.as_ref().map(|(sdk, _)| sdk)
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

/// Changes a test server's notification settings.
type ConfigureNotify = Box<dyn FnOnce(&mut NotifySettings) + Send>;

/// How a test server's app is wired.
enum Setup {
    Plain,
    /// The state store wrapped in a [`RecordingStore`].
    Recorded,
    /// The ports changed by a closure.
    Customised(Box<dyn FnOnce(&mut Ports) + Send>),
    /// Settings (`BAZAAR_*` variables) besides the test defaults.
    Settings(Vec<(String, String)>),
}

/// A test server's setting: one of `overrides`, or the test default. Every test client calls
/// from the loopback address, so the per-client rate limits are off unless a test sets them.
fn test_setting(name: &str, overrides: &[(String, String)]) -> Option<String> {
    if let Some((_, value)) = overrides.iter().find(|(known, _)| known == name) {
        return Some(value.clone());
    }
    match name {
        "BAZAAR_JWT_SECRET" => Some(TEST_JWT_SECRET.to_owned()),
        _ if name.starts_with("BAZAAR_RATE_LIMIT_") => Some("off".to_owned()),
        _ => None,
    }
}

/// The local app over the configured adapters, its ports changed by `customise`, with the
/// test settings (tokens signed with [`TEST_JWT_SECRET`]) and `config` as the backend.
async fn customised_app(
    config: &BackendConfig,
    sdk: Option<aws_config::SdkConfig>,
    sent: &Arc<Sent>,
    settings: &[(String, String)],
    customise: impl FnOnce(&mut Ports),
) -> Local {
    let source = Source::new(|name| test_setting(name, settings));
    let mut settings = Settings::from_source(&source).expect("read the test settings");
    settings.backend = config.clone();
    Local::start_with(&settings, sdk, |ports| {
        customise(ports);
        sent.wrap(&mut ports.notifiers);
    })
    .await
    .expect("start the test app")
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
