//! Files and directories only the server's own user may read: the data directory holds
//! password hashes, addresses, webhook secrets and signing keys, so it is created `0700` and
//! every file in it `0600`, whatever the process umask says. (On other platforms the
//! defaults apply.)

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// The mode of private directories.
pub const DIR_MODE: u32 = 0o700;
/// The mode of private files.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) owner-only; an existing one is narrowed to owner-only.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)?;
    restrict(dir, DIR_MODE)
}

/// Options that create a file owner-only (`create_new` or `create` is up to the caller).
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

/// Creates a new owner-only file (fails if it exists).
pub fn create_new(path: &Path) -> io::Result<File> {
    file_options().create_new(true).open(path)
}

/// Makes sure `path` exists and is owner-only (creating it empty when missing): a database
/// file that SQLite will open and fill, its journal files then inherit its mode.
pub fn ensure_file(path: &Path) -> io::Result<()> {
    file_options().create(true).truncate(false).open(path)?;
    restrict(path, FILE_MODE)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(current & mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path)
            .map(|metadata| metadata.permissions().mode() & 0o777)
            .expect("read the file's mode")
    }

    #[test]
    fn directories_and_files_are_owner_only() {
        let root = std::env::temp_dir().join(format!("bazaar-private-{}", ulid::Ulid::new()));
        let dir = root.join("data");
        create_dir(&dir).expect("create the directory");
        assert_eq!(mode(&dir), 0o700);
        // An existing, world-readable directory and file are narrowed.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .expect("widen the directory's permissions");
        create_dir(&dir).expect("narrow the existing directory");
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("state.sqlite3");
        fs::write(&file, b"x").expect("write the file");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644))
            .expect("widen the file's permissions");
        ensure_file(&file).expect("narrow the existing file");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::read(&file).ok(), Some(b"x".to_vec()), "contents kept");
        let new = dir.join("new");
        drop(create_new(&new).expect("create a new file"));
        assert_eq!(mode(&new), 0o600);
        let _ = fs::remove_dir_all(root);
    }
}
