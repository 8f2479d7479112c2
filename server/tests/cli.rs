//! The `bazaar` binary as an operator uses it: create an admin from the command line, start
//! the server (bootstrapping an admin from the environment), sign in, stop it with Ctrl-C.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_bazaar");

struct DataDir(PathBuf);

impl DataDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("bazaar-cli-{}", ulid::Ulid::new()));
        Self(path)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bazaar(data: &DataDir) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BAZAAR_DATA_DIR", &data.0)
        .env("BAZAAR_LOG", "warn");
    command
}

fn create_admin(
    data: &DataDir,
    email: &str,
    username: &str,
    password: &str,
) -> std::process::Output {
    create_admin_with(data, &["--email", email, "--username", username], password)
}

/// `bazaar create-admin <args>` with `password` on standard input.
fn create_admin_with(data: &DataDir, args: &[&str], password: &str) -> std::process::Output {
    let mut child = bazaar(data)
        .arg("create-admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bazaar create-admin");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(password.as_bytes());
    }
    child
        .wait_with_output()
        .expect("wait for bazaar create-admin")
}

/// A running `bazaar serve`, interrupted when dropped.
struct Server {
    child: Child,
    base_url: String,
    /// What it printed (its log lines included) before it listened.
    startup: Vec<String>,
}

impl Server {
    fn start(data: &DataDir, extra_env: &[(&str, &str)]) -> Self {
        let mut command = bazaar(data);
        command.arg("serve").env("BAZAAR_LISTEN", "127.0.0.1:0");
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run bazaar serve");
        let stdout = child.stdout.take().expect("no stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut startup = Vec::new();
        let base_url = loop {
            let line = lines
                .next()
                .expect("bazaar exited before listening")
                .unwrap_or_default();
            if let Some(rest) = line.strip_prefix("Bazaar listening on ") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            startup.push(line);
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            base_url,
            startup,
        }
    }

    fn interrupt(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("bazaar did not stop within 10 s of Ctrl-C");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(base_url: &str, email: &str, password: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/api/v1/users/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("send the login");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_admin_created_on_the_command_line_can_sign_in() {
    let data = DataDir::new();
    let created = create_admin(
        &data,
        "Boss@Example.com",
        "boss",
        "a-strong-admin-password\n",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("created"));
    let again = create_admin(&data, "boss@example.com", "boss", "a-strong-admin-password");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already an admin"));
    let weak = create_admin(&data, "other@example.com", "other", "short");
    assert!(!weak.status.success(), "a weak password was accepted");
    let empty = create_admin(&data, "other@example.com", "other", "");
    assert!(!empty.status.success(), "an empty password was accepted");

    let mut server = Server::start(&data, &[]);
    let (status, body) = login(
        &server.base_url,
        "boss@example.com",
        "a-strong-admin-password",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    let status = server.interrupt();
    assert!(status.success(), "bazaar exited with {status}");
}

#[tokio::test]
async fn the_server_bootstraps_an_admin_from_its_environment_and_keeps_data() {
    let data = DataDir::new();
    let env = [
        ("BAZAAR_ADMIN_EMAIL", "ops@example.com"),
        ("BAZAAR_ADMIN_PASSWORD", "ops-password-123"),
    ];
    let mut server = Server::start(&data, &env);
    let (status, body) = login(&server.base_url, "ops@example.com", "ops-password-123").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    let token = body["access_token"].as_str().unwrap_or_default().to_owned();
    assert!(server.interrupt().success());

    // A restart on the same data directory keeps the account and honours the old token.
    let mut restarted = Server::start(&data, &env);
    let me = reqwest::Client::new()
        .get(format!("{}/api/v1/users/me", restarted.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send GET /users/me after the restart");
    assert_eq!(me.status().as_u16(), 200);
    assert!(restarted.interrupt().success());
}

#[test]
fn on_aws_a_missing_secret_stops_the_start() {
    let data = DataDir::new();
    let output = bazaar(&data)
        .arg("serve")
        .env("BAZAAR_BACKEND", "aws")
        .env("BAZAAR_LISTEN", "127.0.0.1:0")
        .env("BAZAAR_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run bazaar serve on AWS without a secret");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("JWT"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let weak = bazaar(&data)
        .arg("serve")
        .env("BAZAAR_BACKEND", "aws")
        .env("BAZAAR_JWT_SECRET", "too-short")
        .env("BAZAAR_LISTEN", "127.0.0.1:0")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run bazaar serve on AWS with a weak secret");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 32"));
}

async fn register(base_url: &str, name: &str, password: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/api/v1/users/register"))
        .json(&json!({
            "email": format!("{name}@example.com"),
            "username": name,
            "password": password,
            "password_confirm": password,
        }))
        .send()
        .await
        .expect("send the registration");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_existing_account_is_promoted_only_on_explicit_request() {
    let data = DataDir::new();
    // Someone registers the address the operator will configure as the admin's.
    let mut first = Server::start(&data, &[]);
    let (status, body) = register(&first.base_url, "ops", "squatter-password").await;
    assert_eq!(status, 201, "{body}");
    assert!(first.interrupt().success());

    // `serve` starts, creates no admin, and says why in one error.
    let env = [
        ("BAZAAR_ADMIN_EMAIL", "ops@example.com"),
        ("BAZAAR_ADMIN_PASSWORD", "ops-password-123"),
    ];
    let mut server = Server::start(&data, &env);
    let errors: Vec<&String> = server
        .startup
        .iter()
        .filter(|line| line.contains("ERROR"))
        .collect();
    assert_eq!(errors.len(), 1, "{:?}", server.startup);
    assert!(errors[0].contains("no admin created"), "{}", errors[0]);
    assert!(errors[0].contains("--promote-existing"), "{}", errors[0]);
    assert!(
        !errors[0].contains("ops@example.com"),
        "personal data logged"
    );
    let (status, _) = login(&server.base_url, "ops@example.com", "ops-password-123").await;
    assert_eq!(status, 401);
    let (status, body) = login(&server.base_url, "ops@example.com", "squatter-password").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "customer");
    let squatter_token = body["access_token"].as_str().unwrap_or_default().to_owned();
    assert!(server.interrupt().success());

    // `create-admin` refuses the same, unless told to promote.
    let refused = create_admin_with(&data, &["--email", "ops@example.com"], "ops-password-123");
    assert!(
        !refused.status.success(),
        "an existing account was promoted"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--promote-existing"));
    let promoted = create_admin_with(
        &data,
        &["--email", "ops@example.com", "--promote-existing"],
        "ops-password-123",
    );
    assert!(
        promoted.status.success(),
        "{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    assert!(String::from_utf8_lossy(&promoted.stdout).contains("now an active admin"));

    let mut server = Server::start(&data, &env);
    let (status, _) = login(&server.base_url, "ops@example.com", "squatter-password").await;
    assert_eq!(status, 401, "the old password still works");
    let me = reqwest::Client::new()
        .get(format!("{}/api/v1/users/me", server.base_url))
        .bearer_auth(&squatter_token)
        .send()
        .await
        .expect("send GET /users/me with the squatter's token");
    assert_eq!(me.status().as_u16(), 401, "an older token survived");
    let (status, body) = login(&server.base_url, "ops@example.com", "ops-password-123").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    assert!(server.interrupt().success());
}
