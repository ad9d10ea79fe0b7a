//! A private PostgreSQL cluster for fault tests: `initdb`'d into a temporary directory from
//! the machine's server binaries (as `tests/services/postgres.sh` does), listening on a free
//! loopback port, so a test can stop it and start it again without touching the shared
//! cluster of `make services`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::Rng;

/// The admin role, as on the shared cluster.
const ADMIN: &str = "sluice_admin";

/// Why a private cluster could not be set up, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum OwnPostgresError {
    /// No PostgreSQL server binaries were found.
    #[error("no PostgreSQL server binaries under /usr/lib/postgresql — run `make services` first")]
    NoBinaries,
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A PostgreSQL tool failed.
    #[error("{tool} failed: {output}")]
    Tool {
        /// The tool.
        tool: &'static str,
        /// What it printed, and the tail of the server log.
        output: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OwnPostgresError {
    let what = what.into();
    move |source| OwnPostgresError::Io { what, source }
}

/// A private PostgreSQL cluster, stopped (and its data removed) when dropped.
#[derive(Debug)]
pub struct OwnPostgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    password: String,
    dir: PathBuf,
    bin: PathBuf,
    running: bool,
}

impl OwnPostgres {
    /// Creates a cluster with the admin role `sluice_admin` (a random password) on a free
    /// loopback port and starts it. Blocks (initdb takes seconds).
    pub fn start() -> Result<OwnPostgres, OwnPostgresError> {
        let bin = binaries()?;
        let port = crate::reserve_port().map_err(io("finding a free port"))?;
        let dir = std::env::temp_dir().join(format!("sluice-pg-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).map_err(io("creating the cluster directory"))?;
        let password: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        let pwfile = dir.join("password");
        std::fs::write(&pwfile, &password).map_err(io("writing the password file"))?;
        // PostgreSQL refuses to run as root: as root the cluster belongs to `postgres`.
        if is_root() {
            run(
                "chown",
                Command::new("chown").arg("-R").arg("postgres").arg(&dir),
            )?;
        }
        let data = dir.join("data");
        run(
            "initdb",
            as_owner(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", ADMIN, "-E", "UTF8", "--locale=C"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display())),
        )?;
        let _ = std::fs::remove_file(&pwfile);
        // `fsync = off` keeps every commit in the machine's page cache, which outlives the
        // server: an immediate stop loses nothing acknowledged (`synchronous_commit` stays on
        // for that: off, the last commits would die with the server).
        let config = format!(
            "listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{}'\n\
             max_connections = 100\n\
             shared_buffers = 32MB\n\
             fsync = off\n\
             full_page_writes = off\n\
             log_min_messages = warning\n",
            dir.join("run").display()
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(io("reading postgresql.conf"))?;
        text.push_str(&config);
        std::fs::write(&conf, text).map_err(io("writing postgresql.conf"))?;
        let mut cluster = OwnPostgres {
            port,
            password,
            dir,
            bin,
            running: false,
        };
        cluster.resume()?;
        Ok(cluster)
    }

    /// The admin URL (it carries the password: never print it).
    pub fn url(&self) -> String {
        format!(
            "postgres://{ADMIN}:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// Stops the cluster at once (`pg_ctl stop -m immediate`: no checkpoint, every
    /// connection cut, as in a crash). The data stays; [`OwnPostgres::resume`] recovers it.
    pub fn kill(&mut self) -> Result<(), OwnPostgresError> {
        if !self.running {
            return Ok(());
        }
        run(
            "pg_ctl stop",
            as_owner(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "-w", "-t", "60", "stop"]),
        )?;
        self.running = false;
        Ok(())
    }

    /// Starts the cluster (again) on the same port and data; returns once it accepts
    /// connections.
    pub fn resume(&mut self) -> Result<(), OwnPostgresError> {
        let started = run(
            "pg_ctl start",
            as_owner(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("postgres.log"))
                .args(["-w", "-t", "60", "start"]),
        );
        if let Err(OwnPostgresError::Tool { tool, output }) = started {
            return Err(OwnPostgresError::Tool {
                tool,
                output: format!("{output}\n{}", self.log_tail()),
            });
        }
        self.running = true;
        Ok(())
    }

    /// The last lines of the server log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.kill();
        if std::env::var_os("SLUICE_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The newest server binaries of the machine.
fn binaries() -> Result<PathBuf, OwnPostgresError> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| OwnPostgresError::NoBinaries)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("pg_ctl").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|(_, bin)| bin)
        .ok_or(OwnPostgresError::NoBinaries)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `tool` run as the cluster's owner: `postgres` when this process is root.
fn as_owner(tool: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

fn run(tool: &'static str, command: &mut Command) -> Result<Output, OwnPostgresError> {
    let output = command.output().map_err(io(format!("running {tool}")))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(OwnPostgresError::Tool {
            tool,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}
