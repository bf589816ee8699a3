//! The optional state file: loaded at start, written atomically (temporary
//! file, then rename) shortly after changes and once more at shutdown.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{ShutdownError, StartError};
use crate::snapshot::Snapshot;
use crate::state::{stopped, unix_now, Shared};

/// Changes are saved this long after the first one, batching bursts of posts.
const SAVE_DEBOUNCE: Duration = Duration::from_millis(500);

/// Reads a state file; `Ok(None)` when it does not exist yet.
pub fn load(path: &Path) -> Result<Option<Snapshot>, StartError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StartError::StateFile {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StartError::StateFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// Writes a state file atomically: a reader sees the old or the new file, never half of one.
pub fn save(path: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(snapshot).map_err(std::io::Error::other)?;
    let mut tmp: OsString = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

async fn save_now(shared: &Shared, path: &Path) -> Result<(), ShutdownError> {
    let snapshot = shared.snapshot(unix_now());
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || save(&owned, &snapshot))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(|source| ShutdownError::StateFile {
            path: path.to_owned(),
            source,
        })
}

/// Saves after changes until shutdown, then saves a last time.
pub(crate) async fn run_saver(
    shared: Arc<Shared>,
    path: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ShutdownError> {
    loop {
        tokio::select! {
            _ = shared.changed.notified() => {
                let stopping = !shared.sleep_unless_shutdown(SAVE_DEBOUNCE).await;
                if let Err(e) = save_now(&shared, &path).await {
                    tracing::warn!(error = %e, "state file not saved; will retry after the next change");
                }
                if stopping {
                    break;
                }
            }
            _ = stopped(&mut shutdown) => break,
        }
    }
    save_now(&shared, &path).await
}
