//! What the shop logs in a test process, captured from the same JSON subscriber `bazaar serve`
//! and every Lambda function install (`bazaar_api::telemetry::init_with`), so tests read the
//! lines an operator would. One subscriber per process: the first `capture` installs it.

use std::io::Write;
use std::sync::{Mutex, Once, PoisonError};

use tracing_subscriber::filter::Targets;

/// Every log line of this process so far.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Sink;

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing the process's logs with `filter` (only the first call counts).
pub fn capture(filter: Targets) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| bazaar_api::telemetry::init_with(filter, || Sink, None));
}

/// Everything logged since capturing started.
pub fn captured() -> String {
    let bytes = LOGS.lock().unwrap_or_else(PoisonError::into_inner);
    String::from_utf8_lossy(&bytes).into_owned()
}
