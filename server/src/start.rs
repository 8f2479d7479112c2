//! Building the local server's app from its settings: the backend they choose (embedded by
//! default, or the AWS adapters), and a token-signing secret kept in the data directory when
//! none is configured.

use bazaar_api::App;
use bazaar_api::settings::{Settings, SettingsError};
use bazaar_embedded::connect::OpenError;
use bazaar_embedded::{EmbeddedHandles, secret_file};
use bazaar_shared::auth::TokenService;

/// The app, and the embedded backend's handles when it runs embedded (the server checks its
/// presigned URLs).
#[derive(Clone)]
pub struct Local {
    pub app: App,
    pub embedded: Option<EmbeddedHandles>,
}

/// Why the local server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Open(#[from] OpenError),
}

impl Local {
    /// Connects the configured backend and wires the app, with tokens.
    pub async fn start(settings: &Settings) -> Result<Self, StartError> {
        Self::start_with(settings, None, |_| {}).await
    }

    /// As [`Local::start`], with the SDK configuration given (tests give emulator
    /// credentials this way) and the ports changed by `customise` before the app is wired.
    pub async fn start_with(
        settings: &Settings,
        sdk: Option<aws_config::SdkConfig>,
        customise: impl FnOnce(&mut bazaar_shared::Ports),
    ) -> Result<Self, StartError> {
        let mut local = bazaar_embedded::connect(&settings.backend, sdk).await?;
        customise(&mut local.connected.ports);
        let data_dir = local
            .embedded
            .as_ref()
            .map(|handles| handles.data_dir.clone());
        let tokens = settings
            .tokens
            .settings(local.connected.aws.as_ref(), || {
                data_dir.map(|dir| secret_file::load_or_create_secret(&dir.join("jwt-secret")))
            })
            .await?;
        Ok(Self {
            app: App::new(settings, local.connected, Some(TokenService::new(tokens))),
            embedded: local.embedded,
        })
    }
}
