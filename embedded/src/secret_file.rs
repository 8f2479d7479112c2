//! Secrets kept in the data directory (the local token-signing secret, the presigned-URL key),
//! created at random on first use and readable by the owner only, so that local tokens and
//! presigned URLs survive a restart.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

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

    #[test]
    fn a_created_secret_is_kept() {
        let dir = std::env::temp_dir().join(format!("bazaar-secret-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("create the secret's directory");
        let path = dir.join("secret");
        let first = load_or_create_secret(&path).expect("create the secret");
        let second = load_or_create_secret(&path).expect("load the kept secret");
        assert_eq!(first, second);
        assert!(first.len() >= 64);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn short_or_empty_secret_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("bazaar-secret-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("create the secret's directory");
        let path = dir.join("secret");
        for short in ["", "  \n", "too-short"] {
            std::fs::write(&path, short).expect("write a short secret");
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
        std::fs::create_dir_all(&dir).expect("create the secret's directory");
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
                    .expect("a start panicked")
                    .expect("load or create the secret")
            })
            .collect();
        assert_eq!(secrets.len(), 1, "{secrets:?}");
        let stored = std::fs::read_to_string(&path).expect("read the stored secret");
        assert!(secrets.contains(stored.trim()));
        let leftovers = std::fs::read_dir(&dir)
            .map(|entries| entries.count())
            .unwrap_or_default();
        assert_eq!(leftovers, 1, "temporary files left behind");
        let _ = std::fs::remove_dir_all(dir);
    }
}
