//! The HTTP client the OTLP exporter posts spans through: one plain HTTP/1.1 POST per export,
//! over a blocking socket, to a collector on loopback (the ADOT collector layer on Lambda;
//! Jaeger or an OpenTelemetry collector locally).
//!
//! Why not hyper or reqwest: spans are exported from whichever thread flushes
//! (`export_on_flush`), blocking it, and often outside any tokio runtime, where an async
//! client would need a runtime of its own; and a hyper client over another body type than the
//! AWS SDK's is a second copy of hyper's client in every function package (about 0.1 MB
//! zipped). A loopback POST needs neither TLS, nor pooling, nor redirects. Responses are
//! parsed by `httparse`, hyper's own parser.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// How long connecting, sending and reading may each take; a collector that does not answer
/// costs a batch, never a request.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A collector answers an export with a small status message.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

#[derive(Default)]
pub struct OtlpClient;

impl fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtlpClient")
    }
}

#[async_trait]
impl HttpClient for OtlpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        post(&request)
    }
}

/// Sends `request` (its method, path, headers and body) and reads the whole answer.
fn post(request: &Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    let uri = request.uri();
    if uri.scheme_str() != Some("http") {
        return Err(format!("only http:// collectors are supported, not {uri}").into());
    }
    let host = uri.host().ok_or("the collector URL has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let address = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("{host} does not resolve"))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;

    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        request.method(),
        request.body().len()
    );
    for (name, value) in request.headers() {
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(request.body())?;

    let mut answer = Vec::new();
    stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut answer)?;
    parse(&answer)
}

/// The status and body of a `Connection: close` answer.
fn parse(answer: &[u8]) -> Result<Response<Bytes>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(body_start) = response.parse(answer)? else {
        return Err("the collector's answer ended early".into());
    };
    let status = response
        .code
        .ok_or("the collector's answer has no status")?;
    let body = Bytes::copy_from_slice(&answer[body_start..]);
    Ok(Response::builder().status(status).body(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_gives_its_status_and_body() {
        let answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad";
        let response = parse(answer).expect("a response");
        assert_eq!(response.status(), 400);
        assert_eq!(response.body().as_ref(), b"bad");
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-").is_err());
    }

    #[test]
    fn only_plain_http_collectors_are_reached() {
        let request = Request::post("https://collector.example/v1/traces")
            .body(Bytes::new())
            .expect("a request");
        let refused = post(&request).expect_err("https is refused");
        assert!(refused.to_string().contains("only http://"), "{refused}");
    }
}
