//! The local choice of backend: the embedded one (the default) or the AWS adapters, from the
//! same configuration the function packages read. The local server, its admin commands, the
//! tests and `cargo lambda watch --features local` connect through here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bazaar_adapters::config::{Backend, BackendConfig, Connected, connect_aws};
use bazaar_adapters::notify::NotifySettings;
use bazaar_adapters::notify::http::HttpNotifier;
use bazaar_adapters::payments;
use bazaar_shared::Ports;
use bazaar_shared::ports::{IdGenerator, Notifier, Notifiers, Store, SystemClock, UlidGenerator};

use crate::notify::files::FileOutbox;
use crate::notify::smtp::SmtpEmail;
use crate::{EmbeddedBlobs, EmbeddedQueue, EmbeddedStore};

/// Connected adapters, with direct handles to the embedded ones where the local server needs
/// more than the port (serving presigned blob URLs).
#[derive(Clone)]
pub struct Local {
    pub connected: Connected,
    pub embedded: Option<EmbeddedHandles>,
}

#[derive(Clone)]
pub struct EmbeddedHandles {
    pub data_dir: PathBuf,
    pub blobs: Arc<EmbeddedBlobs>,
    pub queue: Arc<EmbeddedQueue>,
}

/// Why the embedded backend could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the embedded backend: {0}")]
pub struct OpenError(String);

/// Builds the adapters the configuration asks for. `sdk`: an SDK configuration built by the
/// caller for the AWS backend (tests give emulator credentials this way).
pub async fn connect(
    config: &BackendConfig,
    sdk: Option<aws_config::SdkConfig>,
) -> Result<Local, OpenError> {
    match &config.backend {
        Backend::Embedded {
            data_dir,
            public_url,
        } => connect_embedded(config, data_dir, public_url),
        Backend::Aws { .. } => Ok(Local {
            connected: connect_aws::<true, true, true>(config, sdk)
                .await
                .map_err(|error| OpenError(error.to_string()))?,
            embedded: None,
        }),
    }
}

fn connect_embedded(
    config: &BackendConfig,
    data_dir: &Path,
    public_url: &str,
) -> Result<Local, OpenError> {
    crate::private_files::create_dir(data_dir).map_err(|error| {
        OpenError(format!(
            "cannot create data directory {}: {error}",
            data_dir.display()
        ))
    })?;
    let store = EmbeddedStore::open(&data_dir.join("state.sqlite3"))
        .map_err(|error| OpenError(error.to_string()))?;
    // DynamoDB deletes items whose `expires_at` passed; so does the embedded store.
    store.spawn_purger(crate::store::PURGE_EVERY);
    let queue = Arc::new(
        EmbeddedQueue::open(&data_dir.join("queues.sqlite3"), config.max_receives)
            .map_err(|error| OpenError(error.to_string()))?,
    );
    let signing_key = crate::secret_file::load_or_create_secret(&data_dir.join("blob-signing-key"))
        .map_err(|error| OpenError(error.to_string()))?;
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
        shards: config.shards,
    };
    Ok(Local {
        connected: Connected {
            ports,
            max_receives: config.max_receives,
            notify: config.notify.clone(),
            aws: None,
        },
        embedded: Some(EmbeddedHandles {
            data_dir: data_dir.to_owned(),
            blobs,
            queue,
        }),
    })
}

/// Locally, e-mail, SMS and push are files in the data directory's outbox (e-mail goes to
/// an SMTP server instead when one is configured).
fn local_notifiers(data_dir: &Path, settings: &NotifySettings) -> Result<Notifiers, OpenError> {
    let files = Arc::new(FileOutbox::new(
        data_dir.join("outbox"),
        settings.email_from.clone(),
    ));
    let http = Arc::new(HttpNotifier::new(settings.allow_private_targets));
    let email: Arc<dyn Notifier> = match &settings.smtp_url {
        Some(url) => Arc::new(
            SmtpEmail::new(url, &settings.email_from)
                .map_err(|error| OpenError(error.to_string()))?,
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            shards: Default::default(),
            notify: NotifySettings {
                email_from: NotifySettings::DEFAULT_FROM.to_owned(),
                allow_private_targets: true,
                smtp_url: None,
                budget: Default::default(),
                sms_countries: None,
            },
        };
        let connected = connect(&config, None)
            .await
            .expect("connect the embedded backend");
        connected
            .connected
            .ports
            .blobs
            .put("imports/01A/a.csv", b"sku".to_vec(), "text/csv")
            .await
            .expect("put a blob");
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
            .expect("list the data directory")
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
