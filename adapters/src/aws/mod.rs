//! The AWS adapters: the state store on DynamoDB, queues on SQS, blobs on S3, and the JWT
//! secret from SSM Parameter Store.
//!
//! All clients share one [`aws_config::SdkConfig`] from [`sdk_config`]. Its endpoint can be
//! overridden so that the same code runs against an emulator (moto, LocalStack) in tests and
//! on a laptop; [`provision`] creates the resources there.

mod attr;
pub mod dynamodb;
pub mod lazy;
pub mod provision;
pub mod s3;
pub(crate) mod signed;
pub mod sqs;

pub use dynamodb::DynamoStore;
pub use s3::S3Blobs;
pub use sqs::SqsQueue;

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region};

/// The region used when none is configured: an emulator needs some region to sign with.
pub(crate) const FALLBACK_REGION: &str = "us-east-1";

/// Loads the shared SDK configuration from the environment (region, credentials); when `endpoint_url`
/// is Some (moto, LocalStack) every client talks to it instead of AWS.
pub async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let region =
        RegionProviderChain::default_provider().or_else(Region::from_static(FALLBACK_REGION));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Reads a SecureString parameter (with decryption) — used for the JWT signing secret.
pub async fn read_ssm_secret(config: &aws_config::SdkConfig, name: &str) -> Result<String, String> {
    let output = aws_sdk_ssm::Client::new(config)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|error| {
            format!(
                "reading parameter {name}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&error)
            )
        })?;
    output
        .parameter()
        .and_then(|parameter| parameter.value())
        .map(str::to_owned)
        .ok_or_else(|| format!("parameter {name} has no value"))
}

/// A moto server for the adapters' tests: these run against a real implementation of the AWS
/// APIs, never a mock. A test that cannot start moto fails.
#[cfg(test)]
pub(crate) mod moto {
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

    const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

    /// A running `python3 -m moto.server`, killed when dropped (also when a test panics).
    pub struct Moto {
        child: Child,
        pub endpoint: String,
    }

    impl Moto {
        /// Starts moto on a free port and waits until it accepts connections.
        pub fn start() -> Self {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("no free port for moto")
                .port();
            let child = Command::new("python3")
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_REGION", "us-east-1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot run python3 -m moto.server");
            let mut moto = Self {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            moto.wait_until_listening(port);
            moto
        }

        fn wait_until_listening(&mut self, port: u16) {
            let started = Instant::now();
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("moto exited at startup: {status}");
                }
                assert!(
                    started.elapsed() < STARTUP_TIMEOUT,
                    "moto did not start listening"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }

        /// The configuration [`super::sdk_config`] builds for this endpoint, with moto's
        /// dummy credentials (the test process's environment may have none).
        pub async fn config(&self) -> aws_config::SdkConfig {
            let credentials = Credentials::new("test", "test", None, None, "moto");
            super::sdk_config(Some(&self.endpoint))
                .await
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(credentials))
                .build()
        }
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::moto::Moto;

    #[tokio::test]
    async fn reads_secure_string_parameters() {
        let moto = Moto::start();
        let config = moto.config().await;
        assert_eq!(config.endpoint_url(), Some(moto.endpoint.as_str()));
        assert!(config.region().is_some());
        aws_sdk_ssm::Client::new(&config)
            .put_parameter()
            .name("/bazaar/test/jwt-secret")
            .value("s3cr3t")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("put parameter");
        let secret = super::read_ssm_secret(&config, "/bazaar/test/jwt-secret").await;
        assert_eq!(secret.as_deref(), Ok("s3cr3t"));
        assert!(
            super::read_ssm_secret(&config, "/bazaar/test/missing")
                .await
                .is_err()
        );
    }
}
