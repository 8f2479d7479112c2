//! One moto server (a real, wire-compatible DynamoDB/SQS/S3 implementation) per test process.
//!
//! `BAZAAR_TEST_AWS_ENDPOINT` names one that is already running (the test command starts one
//! for the whole run). Otherwise the first test that needs it starts `python3 -m moto.server`
//! (through `infra/moto_server.py`, which makes each request atomic as DynamoDB does) on a free
//! loopback port; it dies with the test process. If moto cannot be started the test
//! fails: it never passes silently without its server.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// The endpoint URL of the moto server, starting it if needed.
/// The e-mail sender every test server on moto uses, verified in SES when it starts.
pub const VERIFIED_SENDER: &str = "Bazaar Tests <no-reply@bazaar.test>";

pub fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| match std::env::var("BAZAAR_TEST_AWS_ENDPOINT") {
            Ok(url) if !url.is_empty() => url,
            _ => spawn(),
        })
        .clone()
}

fn spawn() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("find a free port for moto");
    // The child is started from a thread that lives as long as the process, because Linux's
    // parent-death signal fires when the spawning *thread* exits.
    let (sent, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/moto_server.py");
        let mut command = Command::new("python3");
        command
            .args([launcher, "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(target_os = "linux")]
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn();
        let _ = sent.send(child.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        if let Ok(mut child) = child {
            let _ = child.wait();
        }
    });
    match received.recv() {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("cannot start moto (pip install 'moto[server]'): {error}"),
        Err(_) => panic!("cannot start moto"),
    }
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto did not start on port {port}: is `moto[server]` installed? (pip install 'moto[server]')"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// SDK configuration for the moto server, with its dummy credentials.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = endpoint();
    let credentials = Credentials::new("test", "test", None, None, "moto");
    bazaar_adapters::aws::sdk_config(Some(&endpoint))
        .await
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}
