//! Where data lives, read from configuration, and the AWS adapters connected from it.
//!
//! Function packages run on AWS only: [`connect_aws`] builds their ports. The embedded
//! backend (SQLite and files) lives in the `bazaar-embedded` crate, which the local server
//! and `cargo lambda watch` use and the packages do not link.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bazaar_shared::notifications::policy::{self, SendBudget};
use bazaar_shared::ports::undeclared::{UndeclaredBlobs, UndeclaredNotifier, UndeclaredQueue};
use bazaar_shared::ports::{
    BlobStore, IdGenerator, Notifiers, Queue, Store, SystemClock, UlidGenerator,
};
use bazaar_shared::settings::{InvalidSetting, Source};
use bazaar_shared::shards::Shards;
use bazaar_shared::{Ports, outbox};

use crate::aws::{self, DynamoStore, S3Blobs, SqsQueue};
use crate::notify::NotifySettings;
use crate::notify::aws::{SesEmail, SnsMessages};
use crate::notify::http::HttpNotifier;
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
    /// How many shards each shop-wide partition is spread over (`BAZAAR_WRITE_SHARDS`; may
    /// grow between deployments, never shrink: see `bazaar_shared::shards`).
    pub shards: Shards,
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
    /// Reads the backend from `source`. AWS is chosen by `BAZAAR_BACKEND=aws`, or when
    /// `BAZAAR_TABLE` is set and `BAZAAR_BACKEND` is not; everything else runs embedded.
    pub fn from_source(source: &Source) -> Result<Self, InvalidSetting> {
        let max_receives = source.number("BAZAAR_MAX_RECEIVES", 1..=1000, 5)?;
        let shards = source.number(
            "BAZAAR_WRITE_SHARDS",
            1..=Shards::MAX,
            Shards::DEFAULT.count(),
        )?;
        let shards = Shards::new(shards).unwrap_or_default();
        let aws = uses_aws(source)?;
        let backend = if aws {
            aws_backend(source)
        } else {
            Backend::Embedded {
                data_dir: PathBuf::from(source.text("BAZAAR_DATA_DIR", DEFAULT_DATA_DIR)),
                public_url: source.text("BAZAAR_PUBLIC_URL", DEFAULT_PUBLIC_URL),
            }
        };
        Ok(Self {
            backend,
            max_receives,
            notify: notify_settings(source, aws)?,
            shards,
        })
    }

    pub fn is_aws(&self) -> bool {
        matches!(self.backend, Backend::Aws { .. })
    }
}

/// Whether the backend is AWS: `BAZAAR_BACKEND` says so, or else a table name is set.
fn uses_aws(source: &Source) -> Result<bool, InvalidSetting> {
    match source.get("BAZAAR_BACKEND").as_deref() {
        Some("aws") => Ok(true),
        Some("embedded") => Ok(false),
        Some(other) => Err(InvalidSetting::new(
            "BAZAAR_BACKEND",
            "`aws` or `embedded`",
            other,
        )),
        None => Ok(source.get("BAZAAR_TABLE").is_some()),
    }
}

fn aws_backend(source: &Source) -> Backend {
    Backend::Aws {
        endpoint_url: source.get("BAZAAR_AWS_ENDPOINT_URL"),
        table: source.text("BAZAAR_TABLE", "bazaar"),
        bucket: source.text("BAZAAR_BUCKET", "bazaar-assets"),
        queue_urls: queue_urls(source),
        queue_prefix: source.text("BAZAAR_QUEUE_PREFIX", "bazaar-"),
        assets_url: source.get("BAZAAR_ASSETS_URL"),
    }
}

/// The queue URLs configured (`BAZAAR_QUEUE_URL_<NAME>`, and `..._DLQ` for `<name>-dlq`).
fn queue_urls(source: &Source) -> HashMap<String, String> {
    QUEUES
        .iter()
        .flat_map(|name| {
            let variable = format!("BAZAAR_QUEUE_URL_{}", name.to_uppercase());
            let dlq_variable = format!("{variable}_DLQ");
            [
                source.get(&variable).map(|url| (name.to_string(), url)),
                source
                    .get(&dlq_variable)
                    .map(|url| (format!("{name}-dlq"), url)),
            ]
        })
        .flatten()
        .collect()
}

/// Where notifications go and within which limits. Private targets are allowed by default
/// only off AWS (local development).
fn notify_settings(source: &Source, aws: bool) -> Result<NotifySettings, InvalidSetting> {
    let defaults = SendBudget::default();
    let budget = SendBudget {
        per_account: source.number(
            "BAZAAR_SEND_BUDGET_PER_ACCOUNT",
            1..=u32::MAX,
            defaults.per_account,
        )?,
        per_target: source.number(
            "BAZAAR_SEND_BUDGET_PER_TARGET",
            1..=u32::MAX,
            defaults.per_target,
        )?,
        per_url: source.number("BAZAAR_SEND_BUDGET_PER_URL", 1..=u32::MAX, defaults.per_url)?,
    };
    Ok(NotifySettings {
        email_from: source.text("BAZAAR_EMAIL_FROM", NotifySettings::DEFAULT_FROM),
        allow_private_targets: source.flag("BAZAAR_ALLOW_PRIVATE_TARGETS", !aws)?,
        smtp_url: source.get("BAZAAR_SMTP_URL"),
        budget,
        sms_countries: source.parsed("BAZAAR_SMS_COUNTRIES", policy::parse_sms_countries)?,
    })
}

/// The adapters behind the ports, and what they were built from.
#[derive(Clone)]
pub struct Connected {
    pub ports: Ports,
    /// Receives before a message is dead-lettered.
    pub max_receives: u32,
    pub notify: NotifySettings,
    /// The SDK configuration, on AWS (reading an SSM parameter, provisioning).
    pub aws: Option<aws_config::SdkConfig>,
}

/// A function package was configured for the embedded backend, which it does not contain.
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "this build runs on AWS only: set BAZAAR_BACKEND=aws (or BAZAAR_TABLE); the embedded \
     backend is in the local server (`bazaar serve`) and in `cargo lambda watch --features local`"
)]
pub struct NotAws;

/// Builds the AWS adapters of the optional ports a process uses (`QUEUE`, `BLOBS`,
/// `NOTIFIERS`; the state store, clock, ids and payment providers are always there); the others
/// are stand-ins that refuse every call (`bazaar_shared::ports::undeclared`). The choices are
/// constants so that a function package does not even link an adapter it does not use.
/// `sdk`: an SDK configuration built by the caller (tests give emulator credentials this way);
/// loaded from the environment when `None`. The SDK clients themselves are built on first use.
pub async fn connect_aws<const QUEUE: bool, const BLOBS: bool, const NOTIFIERS: bool>(
    config: &BackendConfig,
    sdk: Option<aws_config::SdkConfig>,
) -> Result<Connected, NotAws> {
    let Backend::Aws {
        endpoint_url,
        table,
        bucket,
        queue_urls,
        queue_prefix,
        assets_url,
    } = &config.backend
    else {
        return Err(NotAws);
    };
    let sdk = match sdk {
        Some(sdk) => sdk,
        None => aws::sdk_config(endpoint_url.as_deref()).await,
    };
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(&sdk, table.clone()));
    let ids: Arc<dyn IdGenerator> = Arc::new(UlidGenerator::default());
    let queue: Arc<dyn Queue> = if QUEUE {
        Arc::new(SqsQueue::new(
            &sdk,
            queue_urls.clone(),
            queue_prefix.clone(),
        ))
    } else {
        Arc::new(UndeclaredQueue)
    };
    let blobs: Arc<dyn BlobStore> = if BLOBS {
        s3_blobs(&sdk, bucket, assets_url.as_deref())
    } else {
        Arc::new(UndeclaredBlobs)
    };
    let notifiers = if NOTIFIERS {
        aws_notifiers(&sdk, &config.notify)
    } else {
        undeclared_notifiers()
    };
    let ports = Ports {
        store: store.clone(),
        queue,
        blobs,
        clock: Arc::new(SystemClock),
        ids: ids.clone(),
        payments: payments::simulated(store, ids),
        notifiers,
        shards: config.shards,
    };
    Ok(Connected {
        ports,
        max_receives: config.max_receives,
        notify: config.notify.clone(),
        aws: Some(sdk),
    })
}

/// The bucket's blob store, its public objects served from `assets_url` when one is set.
fn s3_blobs(
    sdk: &aws_config::SdkConfig,
    bucket: &str,
    assets_url: Option<&str>,
) -> Arc<dyn BlobStore> {
    let blobs = S3Blobs::new(sdk, bucket.to_owned());
    Arc::new(match assets_url {
        Some(url) => blobs.with_public_base(url.to_owned()),
        None => blobs,
    })
}

fn undeclared_notifiers() -> Notifiers {
    let none = Arc::new(UndeclaredNotifier);
    Notifiers {
        email: none.clone(),
        sms: none.clone(),
        push: none.clone(),
        slack: none.clone(),
        webhook: none,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<BackendConfig, InvalidSetting> {
        BackendConfig::from_source(&Source::pairs(pairs))
    }

    #[test]
    fn embedded_is_the_default() {
        let chosen = config(&[]).expect("read the default config");
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
        .expect("read the AWS config");
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
        .expect("read the AWS config with an assets URL");
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
        let chosen = config(&[]).expect("read the default config");
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
        .expect("read the send budgets");
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
    fn the_backend_is_named_or_follows_the_table() {
        let aws = |pairs: &[(&str, &str)]| uses_aws(&Source::pairs(pairs));
        assert_eq!(aws(&[]), Ok(false));
        assert_eq!(aws(&[("BAZAAR_TABLE", "shop")]), Ok(true));
        assert_eq!(aws(&[("BAZAAR_BACKEND", "aws")]), Ok(true));
        assert_eq!(
            aws(&[("BAZAAR_BACKEND", "embedded"), ("BAZAAR_TABLE", "shop")]),
            Ok(false)
        );
        assert_eq!(
            aws(&[("BAZAAR_BACKEND", "AWS")]),
            Err(InvalidSetting::new(
                "BAZAAR_BACKEND",
                "`aws` or `embedded`",
                "AWS"
            ))
        );
    }

    #[test]
    fn queue_urls_and_their_dead_letter_queues_are_read_by_name() {
        let urls = queue_urls(&Source::pairs(&[
            ("BAZAAR_QUEUE_URL_PAYMENTS", "http://q/p"),
            ("BAZAAR_QUEUE_URL_PAYMENTS_DLQ", "http://q/p-dlq"),
            ("BAZAAR_QUEUE_URL_UNKNOWN", "http://q/u"),
        ]));
        let mut listed: Vec<_> = urls.iter().collect();
        listed.sort();
        let payments = outbox::PAYMENTS_QUEUE.to_owned();
        let payments_dlq = format!("{payments}-dlq");
        assert_eq!(
            listed,
            [
                (&payments, &"http://q/p".to_owned()),
                (&payments_dlq, &"http://q/p-dlq".to_owned())
            ]
        );
        assert!(queue_urls(&Source::pairs(&[])).is_empty());
    }

    #[test]
    fn aws_names_default_to_the_templates_resources() {
        let Backend::Aws {
            table,
            bucket,
            queue_prefix,
            endpoint_url,
            ..
        } = aws_backend(&Source::pairs(&[("BAZAAR_BUCKET", "assets")]))
        else {
            panic!("not aws")
        };
        assert_eq!(
            (table.as_str(), bucket.as_str(), queue_prefix.as_str()),
            ("bazaar", "assets", "bazaar-")
        );
        assert_eq!(endpoint_url, None);
    }

    #[test]
    fn private_targets_are_allowed_by_default_only_off_aws() {
        let none = Source::pairs(&[]);
        assert!(notify_settings(&none, false).is_ok_and(|n| n.allow_private_targets));
        assert!(notify_settings(&none, true).is_ok_and(|n| !n.allow_private_targets));
        let allowed = Source::pairs(&[("BAZAAR_ALLOW_PRIVATE_TARGETS", "true")]);
        assert!(notify_settings(&allowed, true).is_ok_and(|n| n.allow_private_targets));
        let garbled = Source::pairs(&[("BAZAAR_ALLOW_PRIVATE_TARGETS", "sometimes")]);
        assert!(notify_settings(&garbled, false).is_err());
        let defaults = notify_settings(&none, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(defaults.email_from, NotifySettings::DEFAULT_FROM);
        assert_eq!(defaults.smtp_url, None);
    }
}
