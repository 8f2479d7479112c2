//! The local server's connection limits, over real TCP: a client that never finishes its
//! headers or its body is cut off, and a connection over the cap is closed at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bazaar::{Limits, Local};
use bazaar_api::settings::Settings;
use bazaar_shared::settings::Source;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Running {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    data_dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

async fn start(limits: Limits) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("read the bound address");
    let data_dir = std::env::temp_dir().join(format!("bazaar-connections-{}", ulid::Ulid::new()));
    let data_dir_text = data_dir.display().to_string();
    let public_url = format!("http://{address}");
    let source = Source::pairs(&[
        ("BAZAAR_DATA_DIR", &data_dir_text),
        ("BAZAAR_PUBLIC_URL", &public_url),
        (
            "BAZAAR_JWT_SECRET",
            "test-only:Zr8#Tq3$Wm6!Lp1&Vx4*Nc9@Hs2^Kd7",
        ),
    ]);
    let settings = Settings::from_source(&source).expect("read the test settings");
    let local = Local::start(&settings)
        .await
        .expect("start the local backend");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bazaar::serve_limited(
        listener,
        local,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(2),
        limits,
    ));
    Running {
        address,
        stop: Some(stop),
        data_dir,
    }
}

/// Reads until the server closes the connection (or `patience` runs out); what came back.
async fn read_until_closed(stream: &mut TcpStream, patience: Duration) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + patience;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&received).into()),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

async fn health(address: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    stream
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nhost: local\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    read_until_closed(&mut stream, Duration::from_secs(10)).await
}

fn limits(header: u64, body: u64, connections: usize) -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(header),
        body_read_timeout: Duration::from_secs(body),
        max_connections: connections,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let server = start(limits(1, 30, 16)).await;
    let mut slow = TcpStream::connect(server.address)
        .await
        .expect("connect to the server");
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nhost: local\r\nx-slow: ")
        .await
        .expect("send the unfinished headers");
    let started = Instant::now();
    let answer = read_until_closed(&mut slow, Duration::from_secs(8)).await;
    assert!(answer.is_some(), "the slow connection was kept open");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(
        !answer.unwrap_or_default().contains(" 200 "),
        "the unfinished request was answered"
    );
    // Others are served meanwhile and after.
    assert!(
        health(server.address)
            .await
            .unwrap_or_default()
            .contains(" 200 ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_body_is_cut_off() {
    let server = start(limits(30, 2, 16)).await;
    let mut slow = TcpStream::connect(server.address)
        .await
        .expect("connect to the server");
    slow.write_all(
        b"POST /api/v1/users/login HTTP/1.1\r\nhost: local\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
    )
    .await
    .expect("send the start of the body");
    // A byte every half second: never idle for long, but never done.
    let started = Instant::now();
    let mut cut_off = false;
    while started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut probe = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await {
            Ok(_) => {
                cut_off = true;
                break;
            }
            Err(_) => {
                if slow.write_all(b" ").await.is_err() {
                    cut_off = true;
                    break;
                }
            }
        }
    }
    assert!(cut_off, "the trickling body was read for 10 s");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed() {
    let server = start(limits(30, 30, 2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.address)
            .await
            .expect("connect to the server");
        // A keep-alive request answered: the connection stays open and counted.
        stream
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nhost: local\r\n\r\n")
            .await
            .expect("send a keep-alive request");
        let mut buffer = [0u8; 4096];
        let n = stream.read(&mut buffer).await.unwrap_or(0);
        assert!(String::from_utf8_lossy(&buffer[..n]).contains(" 200 "));
        held.push(stream);
    }
    let refused = health(server.address).await.unwrap_or_default();
    assert!(
        !refused.contains(" 200 "),
        "a third connection was served: {refused}"
    );
    drop(held.pop());
    // The freed slot is reused once the server has seen the close.
    let started = Instant::now();
    loop {
        if health(server.address)
            .await
            .unwrap_or_default()
            .contains(" 200 ")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn limits_are_read_from_the_environment_with_clear_errors() {
    let none = Limits::from_source(&Source::pairs(&[]));
    assert_eq!(none, Ok(Limits::default()));
    let set = Limits::from_source(&Source::pairs(&[
        ("BAZAAR_HEADER_READ_TIMEOUT_SECS", "5"),
        ("BAZAAR_BODY_READ_TIMEOUT_SECS", "20"),
        ("BAZAAR_MAX_CONNECTIONS", "64"),
    ]));
    assert_eq!(set, Ok(limits(5, 20, 64)));
    let bad = Limits::from_source(&Source::pairs(&[("BAZAAR_MAX_CONNECTIONS", "0")]));
    assert!(bad.is_err_and(|error| error.name == "BAZAAR_MAX_CONNECTIONS"));
}
