//! Blob storage as files, with S3's semantics, and presigned URLs served by the local server.
//!
//! Layout under the root directory:
//!
//! - `objects/<key>`: the object's bytes, each key segment a directory level;
//! - `meta/<key>`: its metadata as JSON (`{"content_type": ...}`). The sidecar mirrors the
//!   object's path exactly, without a suffix, so that any key that fits in `objects/` also fits
//!   in `meta/` (a `.json` suffix would let key `a` collide with key `a.json/b`);
//! - `tmp/`: files being written.
//!
//! Each file is written to `tmp/`, fsynced and renamed into place, so a crash never leaves a
//! half-written object. The object is renamed before its sidecar: a crash between the two
//! renames (or a read racing a write) can pair new bytes with the previous content type,
//! never with torn bytes. A key cannot be both an object and a "directory" of other keys
//! (`a` and `a/b`), which S3 allows; such a put fails with [`BlobError::InvalidKey`].
//!
//! Presigned URLs are `{public_base_url}/_blobs/{key}?X-Bazaar-Method=..&X-Bazaar-Expires=..
//! [&X-Bazaar-Length=..]&X-Bazaar-Signature=..`, the signature an HMAC-SHA256 over method,
//! key, expiry and (for a PUT) content type and length, when one was given; the local server
//! checks them with [`EmbeddedBlobs::verify`]. Public objects are served by the local server
//! at `{public_base_url}/assets/{key}` ([`BlobStore::public_url`]).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_shared::ports::blob::{
    Blob, BlobError, BlobStore, PresignedRequest, url_path, validate_key,
};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What an object written without a sidecar (by hand, into `objects/`) is served as.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

const METHOD_PARAM: &str = "X-Bazaar-Method";
const EXPIRES_PARAM: &str = "X-Bazaar-Expires";
const LENGTH_PARAM: &str = "X-Bazaar-Length";
const SIGNATURE_PARAM: &str = "X-Bazaar-Signature";

/// Why a presigned request is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BlobAccessError {
    #[error("the URL has expired")]
    Expired,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the URL is not a presigned URL")]
    Malformed,
    /// The URL allows an upload of exactly `expected` bytes; the request declared another
    /// length (or none).
    #[error("the upload must be exactly {expected} bytes, not {}", describe_length(*.actual))]
    WrongLength { expected: u64, actual: Option<u64> },
}

fn describe_length(length: Option<u64>) -> String {
    length.map_or_else(|| "of undeclared length".to_owned(), |n| n.to_string())
}

/// What a verified presigned request allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The exact length of the upload, when the URL was signed with one.
    pub content_length: Option<u64>,
}

/// Objects as files under a root directory.
#[derive(Clone)]
pub struct EmbeddedBlobs {
    root: PathBuf,
    public_base_url: String,
    signing_key: Vec<u8>,
}

impl std::fmt::Debug for EmbeddedBlobs {
    /// Leaves the signing key out, so that logging the adapter cannot leak it.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EmbeddedBlobs")
            .field("root", &self.root)
            .field("public_base_url", &self.public_base_url)
            .finish_non_exhaustive()
    }
}

/// The sidecar of an object.
#[derive(Serialize, Deserialize)]
struct Meta {
    content_type: String,
}

impl EmbeddedBlobs {
    /// Objects live as files under `root`; presigned URLs point at `public_base_url` (e.g. "http://127.0.0.1:3000"),
    /// path `/_blobs/{key}` with each key segment percent-encoded, and are signed with HMAC-SHA256 under `signing_key`.
    pub fn new(root: PathBuf, public_base_url: String, signing_key: Vec<u8>) -> Self {
        if signing_key.is_empty() {
            tracing::warn!("the blob signing key is empty: anyone can forge presigned URLs");
        }
        Self {
            root,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            signing_key,
        }
    }

    /// Checks a presigned request that reached the local server. `method` is "GET" or "PUT"; `key` is the DECODED object key;
    /// `query` is the raw query string of the request URL; `content_type` is the request's Content-Type header (for PUT);
    /// `content_length` is the length the request declares (its Content-Length header; `None` when it has none).
    ///
    /// The signature is checked before the expiry and the length, so that `Expired` and
    /// `WrongLength` are only ever reported for a URL this store really issued. A URL signed
    /// with a length accepts only a request declaring exactly that length; the caller must
    /// still make sure the body it reads is that long ([`Grant::content_length`]).
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        query: &str,
        content_type: Option<&str>,
        content_length: Option<u64>,
        now_unix: i64,
    ) -> Result<Grant, BlobAccessError> {
        let signed = SignedParams::parse(query)?;
        if !matches!(method, "GET" | "PUT") || validate_key(key).is_err() {
            return Err(BlobAccessError::Malformed);
        }
        if signed.method != method {
            return Err(BlobAccessError::BadSignature);
        }
        let content_type = (method == "PUT").then(|| content_type.unwrap_or(""));
        let canonical = canonical_request(method, key, signed.expires, content_type, signed.length);
        self.mac(&canonical)
            .ok_or(BlobAccessError::BadSignature)?
            .verify_slice(&signed.signature)
            .map_err(|_| BlobAccessError::BadSignature)?;
        if now_unix > signed.expires {
            return Err(BlobAccessError::Expired);
        }
        if let Some(expected) = signed.length
            && content_length != Some(expected)
        {
            return Err(BlobAccessError::WrongLength {
                expected,
                actual: content_length,
            });
        }
        Ok(Grant {
            content_length: signed.length,
        })
    }

    /// Starts an upload that is written to disk as it arrives (see [`StagedUpload`]) instead
    /// of being held in memory.
    pub fn stage(&self) -> io::Result<StagedUpload> {
        let staging = self.root.join("tmp");
        crate::private_files::create_dir(&staging)?;
        let path = staging.join(format!("{}.part", ulid::Ulid::new()));
        let file = crate::private_files::create_new(&path)?;
        Ok(StagedUpload {
            path,
            file: Some(file),
        })
    }

    /// Makes a fully written staged upload the object `key`: synced, then renamed into place
    /// (readers see the old object or the whole new one), then its content type recorded.
    pub async fn commit(
        &self,
        mut staged: StagedUpload,
        file: File,
        key: &str,
        content_type: &str,
    ) -> Result<(), BlobError> {
        validate_key(key)?;
        let (blobs, key, content_type) = (self.clone(), key.to_owned(), content_type.to_owned());
        let from = std::mem::take(&mut staged.path);
        blocking(move || {
            let result = blobs.commit_blocking(&from, file, &key, &content_type);
            if result.is_err() {
                let _ = fs::remove_file(&from);
            }
            result
        })
        .await
    }

    fn commit_blocking(
        &self,
        from: &Path,
        file: File,
        key: &str,
        content_type: &str,
    ) -> Result<(), BlobError> {
        if self.is_taken_by_a_prefix(key) {
            return Err(BlobError::InvalidKey(key.to_owned()));
        }
        let destination = self.object_path(key);
        let parent = destination
            .parent()
            .ok_or_else(|| BlobError::InvalidKey(key.to_owned()))?;
        let moved = (|| {
            file.sync_all()?;
            drop(file);
            crate::private_files::create_dir(parent)?;
            fs::rename(from, &destination)?;
            sync_directory(parent)
        })();
        moved.map_err(|error| io_error(key, &error))?;
        let meta = serde_json::to_vec(&Meta {
            content_type: content_type.to_owned(),
        })
        .map_err(|error| BlobError::Unavailable(error.to_string()))?;
        write_atomically(&self.root.join("tmp"), &self.meta_path(key), &meta)
            .map_err(|error| io_error(key, &error))
    }

    fn object_path(&self, key: &str) -> PathBuf {
        under(&self.root.join("objects"), key)
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        under(&self.root.join("meta"), key)
    }

    /// `None` only if the HMAC implementation refused the key, which HMAC never does.
    fn mac(&self, canonical: &str) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.signing_key).ok()?;
        mac.update(canonical.as_bytes());
        Some(mac)
    }

    fn presign(
        &self,
        method: &'static str,
        key: &str,
        content_type: Option<&str>,
        content_length: Option<u64>,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        validate_key(key)?;
        let lifetime = i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX);
        let expires = chrono::Utc::now().timestamp().saturating_add(lifetime);
        let mac = self
            .mac(&canonical_request(
                method,
                key,
                expires,
                content_type,
                content_length,
            ))
            .ok_or_else(|| BlobError::Unavailable("the signing key was refused".to_owned()))?;
        let signature = hex(&mac.finalize().into_bytes());
        let length = content_length
            .map(|length| format!("&{LENGTH_PARAM}={length}"))
            .unwrap_or_default();
        let url = format!(
            "{}/_blobs/{}?{METHOD_PARAM}={method}&{EXPIRES_PARAM}={expires}{length}&{SIGNATURE_PARAM}={signature}",
            self.public_base_url,
            url_path(key),
        );
        // The same headers S3 signs: the content type and, when given, the length.
        let mut headers = Vec::new();
        if let Some(content_type) = content_type {
            headers.push(("content-type".to_owned(), content_type.to_owned()));
        }
        if let Some(length) = content_length {
            headers.push(("content-length".to_owned(), length.to_string()));
        }
        Ok(PresignedRequest {
            method,
            url,
            headers,
        })
    }

    fn put_blocking(&self, key: &str, body: &[u8], content_type: &str) -> Result<(), BlobError> {
        if self.is_taken_by_a_prefix(key) {
            return Err(BlobError::InvalidKey(key.to_owned()));
        }
        let meta = serde_json::to_vec(&Meta {
            content_type: content_type.to_owned(),
        })
        .map_err(|error| BlobError::Unavailable(error.to_string()))?;
        let staging = self.root.join("tmp");
        write_atomically(&staging, &self.object_path(key), body)
            .map_err(|error| io_error(key, &error))?;
        write_atomically(&staging, &self.meta_path(key), &meta)
            .map_err(|error| io_error(key, &error))
    }

    /// Whether `key` cannot be a file because it is a directory of other keys, or because one
    /// of its leading segments is itself an object.
    fn is_taken_by_a_prefix(&self, key: &str) -> bool {
        let mut path = self.root.join("objects");
        let segments: Vec<&str> = key.split('/').collect();
        let (last, parents) = segments.split_last().unwrap_or((&"", &[]));
        for segment in parents {
            path.push(segment);
            if path.is_file() {
                return true;
            }
        }
        path.push(last);
        path.is_dir()
    }

    fn get_blocking(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        let body = match fs::read(self.object_path(key)) {
            Ok(body) => body,
            Err(error) if is_absent(&error) => return Ok(None),
            Err(error) => return Err(io_error(key, &error)),
        };
        let content_type = match fs::read(self.meta_path(key)) {
            Ok(meta) => {
                serde_json::from_slice::<Meta>(&meta)
                    .map_err(|error| {
                        BlobError::Unavailable(format!("the metadata of {key:?}: {error}"))
                    })?
                    .content_type
            }
            Err(error) if is_absent(&error) => DEFAULT_CONTENT_TYPE.to_owned(),
            Err(error) => return Err(io_error(key, &error)),
        };
        Ok(Some(Blob { body, content_type }))
    }

    fn get_range_blocking(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        let mut file = match File::open(self.object_path(key)) {
            Ok(file) => file,
            Err(error) if is_absent(&error) => return Ok(None),
            Err(error) => return Err(io_error(key, &error)),
        };
        let size = match file.metadata() {
            // A directory opens too, but is no object.
            Ok(metadata) if !metadata.is_file() => return Ok(None),
            Ok(metadata) => metadata.len(),
            Err(error) => return Err(io_error(key, &error)),
        };
        if start >= size || len == 0 {
            return Ok(Some(Vec::new()));
        }
        file.seek(SeekFrom::Start(start))
            .map_err(|error| io_error(key, &error))?;
        let expected = len.min(size - start);
        let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        file.take(len)
            .read_to_end(&mut bytes)
            .map_err(|error| io_error(key, &error))?;
        Ok(Some(bytes))
    }
}

#[async_trait]
impl BlobStore for EmbeddedBlobs {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        let (blobs, key, content_type) = (self.clone(), key.to_owned(), content_type.to_owned());
        blocking(move || blobs.put_blocking(&key, &body, &content_type)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        validate_key(key)?;
        let (blobs, key) = (self.clone(), key.to_owned());
        blocking(move || blobs.get_blocking(&key)).await
    }

    async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        validate_key(key)?;
        let (blobs, key) = (self.clone(), key.to_owned());
        blocking(move || blobs.get_range_blocking(&key, start, len)).await
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: Option<u64>,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        self.presign("PUT", key, Some(content_type), content_length, expires_in)
    }

    fn public_url(&self, key: &str) -> String {
        format!("{}/assets/{}", self.public_base_url, url_path(key))
    }

    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        self.presign("GET", key, None, None, expires_in)
    }
}

/// File I/O blocks; keep it off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| BlobError::Unavailable(format!("the file task failed: {error}")))?
}

/// What the signature covers, one field a line: a key has no control characters (nor has a
/// header value), so no two different requests share a canonical form.
fn canonical_request(
    method: &str,
    key: &str,
    expires: i64,
    content_type: Option<&str>,
    content_length: Option<u64>,
) -> String {
    let length = content_length.map(|n| n.to_string()).unwrap_or_default();
    format!(
        "{method}\n{key}\n{expires}\n{}\n{length}",
        content_type.unwrap_or("")
    )
}

/// The parameters of a presigned URL, decoded.
struct SignedParams {
    method: String,
    expires: i64,
    /// Present only in an upload URL signed with a length.
    length: Option<u64>,
    signature: Vec<u8>,
}

impl SignedParams {
    /// Other parameters are ignored (a client may add a cache buster); a repeated one is
    /// refused, since which copy was signed would be ambiguous.
    fn parse(query: &str) -> Result<Self, BlobAccessError> {
        let (mut method, mut expires, mut length, mut signature) = (None, None, None, None);
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match percent_decode(name)?.as_str() {
                METHOD_PARAM => &mut method,
                EXPIRES_PARAM => &mut expires,
                LENGTH_PARAM => &mut length,
                SIGNATURE_PARAM => &mut signature,
                _ => continue,
            };
            if slot.replace(percent_decode(value)?).is_some() {
                return Err(BlobAccessError::Malformed);
            }
        }
        let (Some(method), Some(expires), Some(signature)) = (method, expires, signature) else {
            return Err(BlobAccessError::Malformed);
        };
        let length = length
            .map(|length| length.parse().map_err(|_| BlobAccessError::Malformed))
            .transpose()?;
        Ok(Self {
            method,
            expires: expires.parse().map_err(|_| BlobAccessError::Malformed)?,
            length,
            signature: unhex(&signature).ok_or(BlobAccessError::Malformed)?,
        })
    }
}

/// An upload on its way to disk: a private file in the store's staging directory, removed
/// again unless [`EmbeddedBlobs::commit`] moves it into place.
pub struct StagedUpload {
    path: PathBuf,
    file: Option<File>,
}

impl StagedUpload {
    /// The file to write the upload to (once); hand it back to [`EmbeddedBlobs::commit`].
    pub fn take_file(&mut self) -> Option<File> {
        self.file.take()
    }
}

impl Drop for StagedUpload {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn under(base: &Path, key: &str) -> PathBuf {
    let mut path = base.to_path_buf();
    path.extend(key.split('/'));
    path
}

/// Writes `bytes` to `destination` so that readers see either the old file or the whole new
/// one: a temporary file in `staging` (same filesystem, so the rename is atomic), fsynced,
/// renamed, and the directory fsynced so that the rename itself survives a crash.
fn write_atomically(staging: &Path, destination: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = destination
        .parent()
        .ok_or_else(|| io::Error::other("an object path has no parent directory"))?;
    crate::private_files::create_dir(parent)?;
    crate::private_files::create_dir(staging)?;
    let temporary = staging.join(format!("{}.part", ulid::Ulid::new()));
    let result = (|| {
        let mut file = crate::private_files::create_new(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, destination)?;
        sync_directory(parent)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

#[cfg(unix)]
fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

#[cfg(not(unix))]
fn sync_directory(_directory: &Path) -> io::Result<()> {
    Ok(())
}

/// A missing object, including a key whose path runs into a file or ends at a directory.
fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

fn io_error(key: &str, error: &io::Error) -> BlobError {
    BlobError::Unavailable(format!("object {key:?}: {error}"))
}

/// Decodes `%XX` escapes; anything that does not decode to UTF-8 is not one of our URLs.
fn percent_decode(text: &str) -> Result<String, BlobAccessError> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| BlobAccessError::Malformed)
}

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|byte| {
            [
                LOWER_HEX[usize::from(byte >> 4)],
                LOWER_HEX[usize::from(byte & 0xF)],
            ]
        })
        .map(char::from)
        .collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((hex_value(pair[0])? << 4) | hex_value(pair[1])?))
        .collect()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;

    const BASE: &str = "http://127.0.0.1:3000";
    const HOUR: Duration = Duration::from_secs(3600);
    const UNSIZED: Grant = Grant {
        content_length: None,
    };

    #[tokio::test]
    async fn staged_uploads_become_private_objects_or_vanish() {
        let dir = TempDir::new("staged");
        let store = blobs(&dir);
        let mut staged = store.stage().expect("stage");
        let mut file = staged.take_file().expect("a file");
        file.write_all(b"sku,name\n").expect("write");
        store
            .commit(staged, file, "imports/01A/a.csv", "text/csv")
            .await
            .expect("commit");
        let blob = store.get("imports/01A/a.csv").await.expect("get");
        assert_eq!(
            blob.map(|blob| (blob.body, blob.content_type)),
            Some((b"sku,name\n".to_vec(), "text/csv".to_owned()))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.object_path("imports/01A/a.csv"))
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // An upload given up on leaves nothing behind.
        let abandoned = store.stage().expect("stage");
        drop(abandoned);
        let leftovers = fs::read_dir(dir.path().join("tmp"))
            .map(|entries| entries.count())
            .unwrap_or(0);
        assert_eq!(leftovers, 0);
    }

    fn blobs(dir: &TempDir) -> EmbeddedBlobs {
        EmbeddedBlobs::new(
            dir.path().to_path_buf(),
            format!("{BASE}/"),
            b"test signing key".to_vec(),
        )
    }

    /// What the local server sees of a presigned URL: the decoded key and the raw query.
    fn request_of(url: &str) -> (String, String) {
        let rest = url
            .strip_prefix(&format!("{BASE}/_blobs/"))
            .expect("a presigned URL");
        let (path, query) = rest.split_once('?').expect("a query string");
        (
            percent_decode(path).expect("a decodable path"),
            query.to_owned(),
        )
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn expiry_of(query: &str) -> i64 {
        SignedParams::parse(query).expect("parse").expires
    }

    #[tokio::test]
    async fn objects_round_trip_with_their_content_type() {
        let dir = TempDir::new("blobs-round-trip");
        let store = blobs(&dir);
        store
            .put(
                "imports/01J/catalogue.csv",
                b"sku,name\n".to_vec(),
                "text/csv",
            )
            .await
            .expect("put");
        assert_eq!(
            store.get("imports/01J/catalogue.csv").await.expect("get"),
            Some(Blob {
                body: b"sku,name\n".to_vec(),
                content_type: "text/csv".to_owned()
            })
        );
        assert!(
            dir.path()
                .join("objects/imports/01J/catalogue.csv")
                .is_file()
        );

        store
            .put(
                "imports/01J/catalogue.csv",
                b"{}".to_vec(),
                "application/json",
            )
            .await
            .expect("overwrite");
        let replaced = store
            .get("imports/01J/catalogue.csv")
            .await
            .expect("get")
            .expect("the object");
        assert_eq!(
            (replaced.body.as_slice(), replaced.content_type.as_str()),
            (&b"{}"[..], "application/json")
        );

        assert_eq!(
            store.get("imports/01J/missing.csv").await.expect("get"),
            None
        );
        assert_eq!(
            store
                .get("imports/01J")
                .await
                .expect("a directory is no object"),
            None
        );
        assert_eq!(
            store
                .get("imports/01J/catalogue.csv/x")
                .await
                .expect("below an object"),
            None
        );
        let staging = fs::read_dir(dir.path().join("tmp")).expect("the staging directory");
        assert_eq!(staging.count(), 0, "no temporary file is left behind");
    }

    #[tokio::test]
    async fn invalid_and_conflicting_keys_are_refused() {
        let dir = TempDir::new("blobs-keys");
        let store = blobs(&dir);
        for bad in ["../escape", "/etc/passwd", "a//b", ""] {
            assert_eq!(
                store.put(bad, b"x".to_vec(), "text/plain").await,
                Err(BlobError::InvalidKey(bad.to_owned()))
            );
            assert!(store.get(bad).await.is_err());
            assert!(store.presign_get(bad, HOUR).await.is_err());
        }
        store
            .put("a/b", b"x".to_vec(), "text/plain")
            .await
            .expect("put");
        assert_eq!(
            store.put("a", b"x".to_vec(), "text/plain").await,
            Err(BlobError::InvalidKey("a".into()))
        );
        assert_eq!(
            store.put("a/b/c", b"x".to_vec(), "text/plain").await,
            Err(BlobError::InvalidKey("a/b/c".into()))
        );
        assert!(
            store.get("a/b").await.expect("get").is_some(),
            "the existing object is intact"
        );
    }

    #[tokio::test]
    async fn persian_keys_and_spaces_round_trip_and_presign() {
        let dir = TempDir::new("blobs-unicode");
        let store = blobs(&dir);
        let key = "تصاویر/کالا 1.png";
        store
            .put(key, vec![0x89, b'P', b'N', b'G'], "image/png")
            .await
            .expect("put");
        assert_eq!(
            store.get(key).await.expect("get").expect("the object").body,
            [0x89, b'P', b'N', b'G']
        );

        let presigned = store.presign_get(key, HOUR).await.expect("presign");
        assert!(
            presigned.url.contains("/_blobs/%D8%AA"),
            "{}",
            presigned.url
        );
        assert!(
            presigned.url.contains("/%DA%A9%D8%A7%D9%84%D8%A7%201.png?"),
            "{}",
            presigned.url
        );
        let (decoded, query) = request_of(&presigned.url);
        assert_eq!(decoded, key);
        assert_eq!(
            store.verify("GET", &decoded, &query, None, None, now()),
            Ok(UNSIZED)
        );
        assert_eq!(
            url_path("imports/01J/catalogue 1.csv"),
            "imports/01J/catalogue%201.csv"
        );
    }

    #[tokio::test]
    async fn a_presigned_put_verifies_until_it_expires() {
        let dir = TempDir::new("blobs-presign-put");
        let store = blobs(&dir);
        let presigned = store
            .presign_put("uploads/photo.jpg", "image/jpeg", None, HOUR)
            .await
            .expect("presign");
        assert_eq!(presigned.method, "PUT");
        assert_eq!(
            presigned.headers,
            [("content-type".to_owned(), "image/jpeg".to_owned())]
        );
        assert!(presigned.url.starts_with(&format!(
            "{BASE}/_blobs/uploads/photo.jpg?X-Bazaar-Method=PUT&"
        )));

        let (key, query) = request_of(&presigned.url);
        let expires = expiry_of(&query);
        assert!((now() + 3599..=now() + 3601).contains(&expires));
        assert_eq!(
            store.verify("PUT", &key, &query, Some("image/jpeg"), None, now()),
            Ok(UNSIZED)
        );
        assert_eq!(
            store.verify("PUT", &key, &query, Some("image/jpeg"), None, expires),
            Ok(UNSIZED)
        );
        assert_eq!(
            store.verify("PUT", &key, &query, Some("image/jpeg"), None, expires + 1),
            Err(BlobAccessError::Expired)
        );
    }

    #[tokio::test]
    async fn a_presigned_get_verifies_and_carries_no_headers() {
        let dir = TempDir::new("blobs-presign-get");
        let store = blobs(&dir);
        let presigned = store
            .presign_get("exports/orders.csv", Duration::from_secs(60))
            .await
            .expect("presign");
        assert_eq!((presigned.method, presigned.headers.len()), ("GET", 0));
        let (key, query) = request_of(&presigned.url);
        assert_eq!(
            store.verify("GET", &key, &query, Some("ignored/for-get"), None, now()),
            Ok(UNSIZED)
        );
        assert_eq!(
            store.verify("PUT", &key, &query, None, None, now()),
            Err(BlobAccessError::BadSignature)
        );
        assert_eq!(
            store.verify("GET", &key, &query, None, None, expiry_of(&query) + 1),
            Err(BlobAccessError::Expired)
        );
    }

    #[tokio::test]
    async fn tampered_requests_are_refused() {
        let dir = TempDir::new("blobs-tamper");
        let store = blobs(&dir);
        let presigned = store
            .presign_put("uploads/a.jpg", "image/jpeg", None, HOUR)
            .await
            .expect("presign");
        let (key, query) = request_of(&presigned.url);
        let verify = |key: &str, query: &str, content_type: Option<&str>| {
            store.verify("PUT", key, query, content_type, None, now())
        };

        let signature_start =
            query.find(SIGNATURE_PARAM).expect("signed") + SIGNATURE_PARAM.len() + 1;
        let mut forged = query.clone().into_bytes();
        forged[signature_start] = if forged[signature_start] == b'0' {
            b'1'
        } else {
            b'0'
        };
        let forged = String::from_utf8(forged).expect("ASCII");
        assert_eq!(
            verify(&key, &forged, Some("image/jpeg")),
            Err(BlobAccessError::BadSignature)
        );

        assert_eq!(
            verify("uploads/b.jpg", &query, Some("image/jpeg")),
            Err(BlobAccessError::BadSignature)
        );
        assert_eq!(
            verify(&key, &query, Some("text/html")),
            Err(BlobAccessError::BadSignature)
        );
        assert_eq!(
            verify(&key, &query, None),
            Err(BlobAccessError::BadSignature)
        );

        let extended = query.replace(
            &format!("{EXPIRES_PARAM}={}", expiry_of(&query)),
            &format!("{EXPIRES_PARAM}={}", expiry_of(&query) + 86_400),
        );
        assert_ne!(extended, query);
        assert_eq!(
            verify(&key, &extended, Some("image/jpeg")),
            Err(BlobAccessError::BadSignature)
        );

        let other_key = EmbeddedBlobs::new(
            dir.path().to_path_buf(),
            BASE.to_owned(),
            b"another key".to_vec(),
        );
        assert_eq!(
            other_key.verify("PUT", &key, &query, Some("image/jpeg"), None, now()),
            Err(BlobAccessError::BadSignature)
        );
    }

    #[tokio::test]
    async fn requests_that_are_not_presigned_are_malformed() {
        let dir = TempDir::new("blobs-malformed");
        let store = blobs(&dir);
        let presigned = store.presign_get("a.txt", HOUR).await.expect("presign");
        let (key, query) = request_of(&presigned.url);
        let without_signature: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.starts_with(SIGNATURE_PARAM))
            .collect();
        for bad in [
            String::new(),
            "download=1".to_owned(),
            without_signature.join("&"),
            format!("{query}&{query}"),
            query.replace(EXPIRES_PARAM, "X-Bazaar-Expires=soon&Ignored"),
            format!("{query}zz"),
        ] {
            assert_eq!(
                store.verify("GET", &key, &bad, None, None, now()),
                Err(BlobAccessError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            store.verify("DELETE", &key, &query, None, None, now()),
            Err(BlobAccessError::Malformed)
        );
        assert_eq!(
            store.verify("GET", "../a.txt", &query, None, None, now()),
            Err(BlobAccessError::Malformed)
        );
        assert_eq!(
            store.verify("GET", &key, &format!("{query}&cache=1"), None, None, now()),
            Ok(UNSIZED)
        );
    }

    #[tokio::test]
    async fn a_sized_presigned_put_accepts_only_that_length() {
        let dir = TempDir::new("blobs-presign-sized");
        let store = blobs(&dir);
        let presigned = store
            .presign_put("products/p1/images/a.png", "image/png", Some(1234), HOUR)
            .await
            .expect("presign");
        assert_eq!(
            presigned.headers,
            [
                ("content-type".to_owned(), "image/png".to_owned()),
                ("content-length".to_owned(), "1234".to_owned())
            ]
        );
        assert!(
            presigned.url.contains(&format!("&{LENGTH_PARAM}=1234&")),
            "{}",
            presigned.url
        );
        let (key, query) = request_of(&presigned.url);
        let verify = |query: &str, length: Option<u64>| {
            store.verify("PUT", &key, query, Some("image/png"), length, now())
        };
        assert_eq!(
            verify(&query, Some(1234)),
            Ok(Grant {
                content_length: Some(1234)
            })
        );
        for wrong in [Some(1233), Some(1235), Some(0), None] {
            assert_eq!(
                verify(&query, wrong),
                Err(BlobAccessError::WrongLength {
                    expected: 1234,
                    actual: wrong
                })
            );
        }
        // The length is signed: changing or dropping it breaks the signature.
        let larger = query.replace("=1234&", "=999999&");
        assert_eq!(
            verify(&larger, Some(999_999)),
            Err(BlobAccessError::BadSignature)
        );
        let unsized_query: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.starts_with(LENGTH_PARAM))
            .collect();
        assert_eq!(
            verify(&unsized_query.join("&"), Some(5)),
            Err(BlobAccessError::BadSignature)
        );
        assert_eq!(
            verify(&query.replace("=1234&", "=12x&"), Some(1234)),
            Err(BlobAccessError::Malformed)
        );
        // An unsized URL takes any length.
        let open = store
            .presign_put("uploads/any.bin", "application/octet-stream", None, HOUR)
            .await
            .expect("presign");
        let (key, query) = request_of(&open.url);
        assert_eq!(
            store.verify(
                "PUT",
                &key,
                &query,
                Some("application/octet-stream"),
                Some(7),
                now()
            ),
            Ok(UNSIZED)
        );
    }

    #[tokio::test]
    async fn ranges_read_part_of_an_object() {
        let dir = TempDir::new("blobs-range");
        let store = blobs(&dir);
        store
            .put("imports/data.csv", b"0123456789".to_vec(), "text/csv")
            .await
            .expect("put");
        let range = |start, len| store.get_range("imports/data.csv", start, len);
        assert_eq!(range(0, 4).await, Ok(Some(b"0123".to_vec())));
        assert_eq!(range(3, 4).await, Ok(Some(b"3456".to_vec())));
        assert_eq!(range(8, 100).await, Ok(Some(b"89".to_vec())));
        assert_eq!(range(0, u64::MAX).await, Ok(Some(b"0123456789".to_vec())));
        assert_eq!(range(10, 4).await, Ok(Some(Vec::new())), "at the end");
        assert_eq!(range(11, 4).await, Ok(Some(Vec::new())), "past the end");
        assert_eq!(range(2, 0).await, Ok(Some(Vec::new())));
        assert_eq!(store.get_range("imports/missing.csv", 0, 4).await, Ok(None));
        assert_eq!(
            store.get_range("imports", 0, 4).await,
            Ok(None),
            "a directory is no object"
        );
        assert_eq!(
            store.get_range("imports/data.csv/x", 0, 4).await,
            Ok(None),
            "below an object"
        );
        assert!(store.get_range("../escape", 0, 4).await.is_err());
    }

    #[test]
    fn public_urls_are_served_under_assets() {
        let dir = TempDir::new("blobs-public");
        let store = blobs(&dir);
        assert_eq!(
            store.public_url("products/01J/images/کالا 1.png"),
            format!("{BASE}/assets/products/01J/images/%DA%A9%D8%A7%D9%84%D8%A7%201.png")
        );
    }

    #[test]
    fn percent_coding_round_trips() {
        for text in ["plain", "with space", "کالا", "a%b+c&d=e", "~._-"] {
            assert_eq!(percent_decode(&url_path(text)).as_deref(), Ok(text));
        }
        assert_eq!(url_path("a b/c"), "a%20b/c");
        assert_eq!(
            percent_decode("100%"),
            Ok("100%".to_owned()),
            "a stray % is literal"
        );
        assert_eq!(unhex(&hex(&[0, 0x7f, 0xff])), Some(vec![0, 0x7f, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
