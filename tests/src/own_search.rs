//! A private OpenSearch node for fault tests, started by `tests/services/opensearch.sh`
//! with a state root of its own (config, data, logs and pid in a temporary directory) and
//! ports from [`reserve_port`], so a test can kill it and start it again without touching
//! the shared node of `make services`. The jars and the launcher come from the cache the
//! shared node was started from.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::reserve_port;

/// Why a private node could not be started.
#[derive(Debug, thiserror::Error)]
pub enum OwnSearchError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The start script failed; its output says why.
    #[error("the private OpenSearch node on 127.0.0.1:{port} did not start: {output}")]
    NotStarted {
        /// Its HTTP port.
        port: u16,
        /// The script's output.
        output: String,
    },
}

/// A private single-node OpenSearch, killed (and its data removed) when dropped.
#[derive(Debug)]
pub struct OwnSearch {
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    transport_port: u16,
    root: PathBuf,
}

impl OwnSearch {
    /// Starts a node on two ports of its own; returns once it is healthy. Blocks (a start
    /// takes some 15 s).
    pub fn start() -> Result<OwnSearch, OwnSearchError> {
        let io = |what| move |source| OwnSearchError::Io { what, source };
        let port = reserve_port().map_err(io("finding a free port"))?;
        let transport_port = reserve_port().map_err(io("finding a free port"))?;
        let root = std::env::temp_dir().join(format!("sluice-search-{port}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(io("creating the state root"))?;
        let mut node = OwnSearch {
            port,
            transport_port,
            root,
        };
        node.resume()?;
        Ok(node)
    }

    /// Its base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the node (SIGKILL: an outage as its clients see a crash) and waits until it is
    /// gone. The data stays: every acknowledged write was synced (`index.translog.durability`
    /// is `request` by default), so [`OwnSearch::resume`] brings all of it back.
    pub fn kill(&mut self) {
        let Some(pid) = self.pid() else {
            return;
        };
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the node again on the same ports and data; returns once it is healthy.
    /// Blocks.
    pub fn resume(&mut self) -> Result<(), OwnSearchError> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("services/opensearch.sh");
        let output = Command::new("bash")
            .arg(script)
            .arg("start")
            .env("SLUICE_ROOT", &self.root)
            .env("SLUICE_OPENSEARCH_PORT", self.port.to_string())
            .env(
                "SLUICE_OPENSEARCH_TRANSPORT_PORT",
                self.transport_port.to_string(),
            )
            .env("SLUICE_OPENSEARCH_HEAP", "-Xms512m -Xmx512m")
            .output()
            .map_err(|source| OwnSearchError::Io {
                what: "running tests/services/opensearch.sh",
                source,
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(OwnSearchError::NotStarted {
                port: self.port,
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            })
        }
    }

    /// The node's pid, from the file the start script wrote.
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.root.join(".sluice/opensearch/opensearch.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for OwnSearch {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("SLUICE_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}
