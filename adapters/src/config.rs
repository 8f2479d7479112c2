//! Choosing and connecting the adapters from configuration (environment variables), at run
//! time: the same binary runs on AWS or on the embedded backend.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

use bazaar_shared::notifications::policy::{self, SendBudget};
use bazaar_shared::ports::{IdGenerator, Notifiers, Store, SystemClock, UlidGenerator};
use bazaar_shared::{Ports, outbox};

use crate::aws::{self, DynamoStore, S3Blobs, SqsQueue};
use crate::embedded::{EmbeddedBlobs, EmbeddedQueue, EmbeddedStore};
use crate::notify::NotifySettings;
use crate::notify::aws::{SesEmail, SnsMessages};
use crate::notify::files::FileOutbox;
use crate::notify::http::HttpNotifier;
use crate::notify::smtp::SmtpEmail;
use crate::payments;

/// Where state, queues and blobs live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite databases and files under `data_dir`; presigned URLs point at `public_url`
    /// (the local server).
    Embedded {
        data_dir: PathBuf,
        public_url: String,
    },
    /// DynamoDB, SQS and S3; `endpoint_url` redirects every client (moto, LocalStack).
    Aws {
        endpoint_url: Option<String>,
        table: String,
        bucket: String,
        /// Logical queue name → URL; names not listed are looked up as `queue_prefix + name`.
        queue_urls: HashMap<String, String>,
        queue_prefix: String,
        /// Where public objects (product images) are served: a CDN in front of the bucket
        /// (`BAZAAR_ASSETS_URL`); the bucket's own address when unset.
        assets_url: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    pub backend: Backend,
    /// Receives before a message is dead-lettered (embedded queues; SQS queues carry their
    /// own redrive policy).
    pub max_receives: u32,
    /// Where notifications go.
    pub notify: NotifySettings,
}

/// The queues whose URLs may be configured (`BAZAAR_QUEUE_URL_<NAME>`, `..._DLQ`).
const QUEUES: [&str; 4] = [
    outbox::NOTIFICATIONS_QUEUE,
    outbox::PAYMENTS_QUEUE,
    outbox::INVOICES_QUEUE,
    outbox::DELIVERIES_QUEUE,
];

pub const DEFAULT_DATA_DIR: &str = ".bazaar";
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:3000";

impl BackendConfig {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    /// AWS is chosen by `BAZAAR_BACKEND=aws`, or when `BAZAAR_TABLE` is set and
    /// `BAZAAR_BACKEND` is not; everything else runs embedded.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let max_receives = match lookup("BAZAAR_MAX_RECEIVES") {
            Some(value) => value
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    format!("BAZAAR_MAX_RECEIVES must be a positive integer, not {value:?}")
                })?,
            None => 5,
        };
        let choice = lookup("BAZAAR_BACKEND");
        let aws = match choice.as_deref() {
            Some("aws") => true,
            Some("embedded") => false,
            Some(other) => {
                return Err(format!(
                    "BAZAAR_BACKEND must be `aws` or `embedded`, not {other:?}"
                ));
            }
            None => lookup("BAZAAR_TABLE").is_some(),
        };
        let backend = if aws {
            let queue_urls = QUEUES
                .iter()
                .flat_map(|name| {
                    let variable = format!("BAZAAR_QUEUE_URL_{}", name.to_uppercase());
                    let dlq_variable = format!("{variable}_DLQ");
                    [
                        lookup(&variable).map(|url| (name.to_string(), url)),
                        lookup(&dlq_variable).map(|url| (format!("{name}-dlq"), url)),
                    ]
                })
                .flatten()
                .collect();
            Backend::Aws {
                endpoint_url: lookup("BAZAAR_AWS_ENDPOINT_URL"),
                table: lookup("BAZAAR_TABLE").unwrap_or_else(|| "bazaar".to_owned()),
                bucket: lookup("BAZAAR_BUCKET").unwrap_or_else(|| "bazaar-assets".to_owned()),
                queue_urls,
                queue_prefix: lookup("BAZAAR_QUEUE_PREFIX").unwrap_or_else(|| "bazaar-".to_owned()),
                assets_url: lookup("BAZAAR_ASSETS_URL"),
            }
        } else {
            Backend::Embedded {
                data_dir: PathBuf::from(
                    lookup("BAZAAR_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()),
                ),
                public_url: lookup("BAZAAR_PUBLIC_URL")
                    .unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned()),
            }
        };
        let allow_private_targets = match lookup("BAZAAR_ALLOW_PRIVATE_TARGETS").as_deref() {
            None => !aws,
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => {
                return Err(format!(
                    "BAZAAR_ALLOW_PRIVATE_TARGETS must be true or false, not {other:?}"
                ));
            }
        };
        let defaults = SendBudget::default();
        let budget = SendBudget {
            per_account: positive(
                &lookup,
                "BAZAAR_SEND_BUDGET_PER_ACCOUNT",
                defaults.per_account,
            )?,
            per_target: positive(
                &lookup,
                "BAZAAR_SEND_BUDGET_PER_TARGET",
                defaults.per_target,
            )?,
            per_url: positive(&lookup, "BAZAAR_SEND_BUDGET_PER_URL", defaults.per_url)?,
        };
        let sms_countries = lookup("BAZAAR_SMS_COUNTRIES")
            .map(|text| policy::parse_sms_countries(&text))
            .transpose()?;
        let notify = NotifySettings {
            email_from: lookup("BAZAAR_EMAIL_FROM")
                .unwrap_or_else(|| NotifySettings::DEFAULT_FROM.to_owned()),
            allow_private_targets,
            smtp_url: lookup("BAZAAR_SMTP_URL"),
            budget,
            sms_countries,
        };
        Ok(Self {
            backend,
            max_receives,
            notify,
        })
    }

    pub fn is_aws(&self) -> bool {
        matches!(self.backend, Backend::Aws { .. })
    }
}

/// A positive whole number setting, or its default when unset.
fn positive(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u32,
) -> Result<u32, String> {
    match lookup(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{name} must be a positive integer, not {value:?}")),
    }
}

/// The adapters behind the ports, with direct handles where the local server needs more than
/// the port (serving presigned blob URLs, reading queue depth).
#[derive(Clone)]
pub struct Connected {
    pub ports: Ports,
    /// The configuration the adapters were built from.
    pub max_receives: u32,
    pub notify: NotifySettings,
    pub embedded: Option<EmbeddedHandles>,
    pub aws: Option<aws_config::SdkConfig>,
}

#[derive(Clone)]
pub struct EmbeddedHandles {
    pub data_dir: PathBuf,
    pub blobs: Arc<EmbeddedBlobs>,
    pub queue: Arc<EmbeddedQueue>,
}

/// Builds the adapters the configuration asks for.
pub async fn connect(config: &BackendConfig) -> Result<Connected, String> {
    connect_with(config, None).await
}

/// As [`connect`], with an SDK configuration built by the caller (tests give emulator
/// credentials this way instead of through the process environment).
pub async fn connect_with(
    config: &BackendConfig,
    sdk: Option<aws_config::SdkConfig>,
) -> Result<Connected, String> {
    match &config.backend {
        Backend::Embedded {
            data_dir,
            public_url,
        } => {
            crate::private_files::create_dir(data_dir).map_err(|error| {
                format!(
                    "cannot create data directory {}: {error}",
                    data_dir.display()
                )
            })?;
            let store =
                EmbeddedStore::open(&data_dir.join("state.sqlite3")).map_err(|e| e.to_string())?;
            // DynamoDB deletes items whose `expires_at` passed; so does the embedded store.
            store.spawn_purger(crate::embedded::store::PURGE_EVERY);
            let queue = Arc::new(
                EmbeddedQueue::open(&data_dir.join("queues.sqlite3"), config.max_receives)
                    .map_err(|e| e.to_string())?,
            );
            let signing_key = load_or_create_secret(&data_dir.join("blob-signing-key"))?;
            let blobs = Arc::new(EmbeddedBlobs::new(
                data_dir.join("blobs"),
                public_url.trim_end_matches('/').to_owned(),
                signing_key.into_bytes(),
            ));
            let store: Arc<dyn Store> = Arc::new(store);
            let ids: Arc<dyn IdGenerator> = Arc::new(UlidGenerator::default());
            let ports = Ports {
                store: store.clone(),
                queue: queue.clone(),
                blobs: blobs.clone(),
                clock: Arc::new(SystemClock),
                ids: ids.clone(),
                payments: payments::simulated(store, ids),
                notifiers: local_notifiers(data_dir, &config.notify)?,
            };
            Ok(Connected {
                ports,
                max_receives: config.max_receives,
                notify: config.notify.clone(),
                embedded: Some(EmbeddedHandles {
                    data_dir: data_dir.clone(),
                    blobs,
                    queue,
                }),
                aws: None,
            })
        }
        Backend::Aws {
            endpoint_url,
            table,
            bucket,
            queue_urls,
            queue_prefix,
            assets_url,
        } => {
            let sdk = match sdk {
                Some(sdk) => sdk,
                None => aws::sdk_config(endpoint_url.as_deref()).await,
            };
            let store: Arc<dyn Store> = Arc::new(DynamoStore::new(&sdk, table.clone()));
            let ids: Arc<dyn IdGenerator> = Arc::new(UlidGenerator::default());
            let ports = Ports {
                store: store.clone(),
                queue: Arc::new(SqsQueue::new(
                    &sdk,
                    queue_urls.clone(),
                    queue_prefix.clone(),
                )),
                blobs: Arc::new(match assets_url {
                    Some(url) => S3Blobs::new(&sdk, bucket.clone()).with_public_base(url.clone()),
                    None => S3Blobs::new(&sdk, bucket.clone()),
                }),
                clock: Arc::new(SystemClock),
                ids: ids.clone(),
                payments: payments::simulated(store, ids),
                notifiers: aws_notifiers(&sdk, &config.notify),
            };
            Ok(Connected {
                ports,
                max_receives: config.max_receives,
                notify: config.notify.clone(),
                embedded: None,
                aws: Some(sdk),
            })
        }
    }
}

/// Locally, e-mail, SMS and push are files in the data directory's outbox (e-mail goes to
/// an SMTP server instead when one is configured).
fn local_notifiers(data_dir: &Path, settings: &NotifySettings) -> Result<Notifiers, String> {
    let files = Arc::new(FileOutbox::new(
        data_dir.join("outbox"),
        settings.email_from.clone(),
    ));
    let http = Arc::new(HttpNotifier::new(settings.allow_private_targets));
    let email: Arc<dyn bazaar_shared::ports::Notifier> = match &settings.smtp_url {
        Some(url) => Arc::new(SmtpEmail::new(url, &settings.email_from)?),
        None => files.clone(),
    };
    Ok(Notifiers {
        email,
        sms: files.clone(),
        push: files,
        slack: http.clone(),
        webhook: http,
    })
}

fn aws_notifiers(sdk: &aws_config::SdkConfig, settings: &NotifySettings) -> Notifiers {
    let sns = Arc::new(SnsMessages::new(sdk));
    let http = Arc::new(HttpNotifier::new(settings.allow_private_targets));
    Notifiers {
        email: Arc::new(SesEmail::new(sdk, settings.email_from.clone())),
        sms: sns.clone(),
        push: sns,
        slack: http.clone(),
        webhook: http,
    }
}

/// Reads a secret kept in the data directory, creating a random one (readable by the owner
/// only) on first use, so that local tokens and presigned URLs survive a restart.
pub fn load_or_create_secret(path: &Path) -> Result<String, String> {
    if let Some(existing) = read_secret(path)? {
        return Ok(existing);
    }
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = STANDARD.encode(bytes);
    match publish_secret(path, &secret) {
        Ok(()) => Ok(secret),
        // Another process published one first: everyone uses theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_secret(path)?
            .ok_or_else(|| format!("{} vanished while it was read", path.display())),
        Err(error) => Err(format!("cannot write {}: {error}", path.display())),
    }
}

/// The shortest secret a secret file may hold (a generated one has 64 characters).
pub const MIN_SECRET_CHARS: usize = 32;

/// The secret in `path`, `None` when there is no file. An empty or short file is refused
/// rather than replaced: replacing it would sign with a new secret at every start.
fn read_secret(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim();
            if secret.chars().count() < MIN_SECRET_CHARS {
                return Err(format!(
                    "{} holds {} characters, fewer than the {MIN_SECRET_CHARS} a secret needs: \
                     delete it to have a new secret generated (tokens signed with the old one \
                     stop working), or write a longer secret into it",
                    path.display(),
                    secret.chars().count()
                ));
            }
            Ok(Some(secret.to_owned()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// Writes the whole secret to a private temporary file beside `path`, then links it into
/// place, which fails with `AlreadyExists` rather than replace a secret another process
/// published: readers never see a partly written file, and one secret wins.
fn publish_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", ulid::Ulid::new()));
    let result = (|| {
        let mut file = crate::private_files::create_new(&temporary)?;
        file.write_all(secret.as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<BackendConfig, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BackendConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn embedded_is_the_default() {
        let chosen = config(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            chosen.backend,
            Backend::Embedded {
                data_dir: PathBuf::from(".bazaar"),
                public_url: DEFAULT_PUBLIC_URL.into()
            }
        );
        assert_eq!(chosen.max_receives, 5);
    }

    #[test]
    fn aws_is_chosen_explicitly_or_by_a_table_name() {
        assert!(config(&[("BAZAAR_BACKEND", "aws")]).is_ok_and(|c| c.is_aws()));
        assert!(config(&[("BAZAAR_TABLE", "shop")]).is_ok_and(|c| c.is_aws()));
        assert!(
            config(&[("BAZAAR_TABLE", "shop"), ("BAZAAR_BACKEND", "embedded")])
                .is_ok_and(|c| !c.is_aws())
        );
        let chosen = config(&[
            ("BAZAAR_BACKEND", "aws"),
            ("BAZAAR_QUEUE_URL_NOTIFICATIONS", "http://q/n"),
            ("BAZAAR_AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Backend::Aws {
            queue_urls,
            endpoint_url,
            assets_url,
            ..
        } = chosen.backend
        else {
            panic!("not aws")
        };
        assert_eq!(
            queue_urls.get("notifications").map(String::as_str),
            Some("http://q/n")
        );
        assert_eq!(endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(assets_url, None, "no CDN unless one is configured");
    }

    #[test]
    fn the_assets_url_is_read_on_aws() {
        let chosen = config(&[
            ("BAZAAR_BACKEND", "aws"),
            ("BAZAAR_ASSETS_URL", "https://cdn.example.com"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Backend::Aws { assets_url, .. } = chosen.backend else {
            panic!("not aws")
        };
        assert_eq!(assets_url.as_deref(), Some("https://cdn.example.com"));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(config(&[("BAZAAR_BACKEND", "azure")]).is_err());
        assert!(config(&[("BAZAAR_MAX_RECEIVES", "0")]).is_err());
        assert!(config(&[("BAZAAR_MAX_RECEIVES", "many")]).is_err());
    }

    #[test]
    fn send_budgets_and_sms_countries_are_read() {
        let chosen = config(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chosen.notify.budget, SendBudget::default());
        assert_eq!(
            chosen.notify.sms_countries, None,
            "every country when unset"
        );
        let chosen = config(&[
            ("BAZAAR_SEND_BUDGET_PER_ACCOUNT", "7"),
            ("BAZAAR_SEND_BUDGET_PER_TARGET", "3"),
            ("BAZAAR_SEND_BUDGET_PER_URL", "9"),
            ("BAZAAR_SMS_COUNTRIES", "+98,+1"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            chosen.notify.budget,
            SendBudget {
                per_account: 7,
                per_target: 3,
                per_url: 9
            }
        );
        assert_eq!(
            chosen.notify.sms_countries,
            Some(vec!["+98".to_owned(), "+1".to_owned()])
        );
        for bad in [
            ("BAZAAR_SEND_BUDGET_PER_ACCOUNT", "0"),
            ("BAZAAR_SEND_BUDGET_PER_TARGET", "lots"),
            ("BAZAAR_SMS_COUNTRIES", "98"),
        ] {
            assert!(config(&[bad]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_created_secret_is_kept() {
        let dir = std::env::temp_dir().join(format!("bazaar-secret-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("secret");
        let first = load_or_create_secret(&path).unwrap_or_else(|e| panic!("{e}"));
        let second = load_or_create_secret(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, second);
        assert!(first.len() >= 64);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn short_or_empty_secret_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("bazaar-secret-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("secret");
        for short in ["", "  \n", "too-short"] {
            std::fs::write(&path, short).unwrap_or_else(|e| panic!("{e}"));
            let refused = load_or_create_secret(&path);
            assert!(refused.is_err(), "{short:?} accepted: {refused:?}");
            assert_eq!(
                std::fs::read_to_string(&path).ok().as_deref(),
                Some(short),
                "the file was replaced"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn concurrent_starts_agree_on_one_secret() {
        let dir = std::env::temp_dir().join(format!("bazaar-secret-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("secret");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    load_or_create_secret(&path)
                })
            })
            .collect();
        let secrets: std::collections::BTreeSet<String> = starts
            .into_iter()
            .map(|start| {
                start
                    .join()
                    .unwrap_or_else(|_| panic!("a start panicked"))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        assert_eq!(secrets.len(), 1, "{secrets:?}");
        let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(secrets.contains(stored.trim()));
        let leftovers = std::fs::read_dir(&dir)
            .map(|entries| entries.count())
            .unwrap_or_default();
        assert_eq!(leftovers, 1, "temporary files left behind");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_data_directory_and_its_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("bazaar-modes-{}", ulid::Ulid::new()));
        let data_dir = root.join("data");
        let config = BackendConfig {
            backend: Backend::Embedded {
                data_dir: data_dir.clone(),
                public_url: "http://127.0.0.1:3000".to_owned(),
            },
            max_receives: 5,
            notify: NotifySettings {
                email_from: NotifySettings::DEFAULT_FROM.to_owned(),
                allow_private_targets: true,
                smtp_url: None,
                budget: Default::default(),
                sms_countries: None,
            },
        };
        let connected = connect(&config).await.unwrap_or_else(|e| panic!("{e}"));
        connected
            .ports
            .blobs
            .put("imports/01A/a.csv", b"sku".to_vec(), "text/csv")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .map(|metadata| metadata.permissions().mode() & 0o777)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        assert_eq!(mode(&data_dir), 0o700);
        for file in ["state.sqlite3", "queues.sqlite3", "blob-signing-key"] {
            assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
        }
        let object = data_dir.join("blobs/objects/imports/01A/a.csv");
        assert_eq!(mode(&object), 0o600);
        for entry in std::fs::read_dir(&data_dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
        {
            let path = entry.path();
            let expected = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode(&path), expected, "{}", path.display());
        }
        drop(connected);
        let _ = std::fs::remove_dir_all(root);
    }
}
