//! A private Kafka broker for fault tests: one KRaft node (broker and controller in one
//! process) on loopback ports of its own ([`reserve_port`]), with its data in a temporary directory of its own, so a
//! test can stop it and start it again without touching the shared broker of
//! `make services`. It runs from the jars `tests/services/kafka.sh` fetched into the cache.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::reserve_port;

/// The Kafka versions `tests/services/kafka.sh` tries, in its order.
const VERSIONS: [&str; 4] = ["4.4.0", "4.3.1", "4.2.0", "4.1.2"];
/// A fixed cluster id (base64url of 16 bytes): every private broker has a data directory of
/// its own, so they need not differ.
const CLUSTER_ID: &str = "c2x1aWNlLW93bi1rYWZrYQ";
/// How long a start may take before it is given up.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a private broker could not be set up or started.
#[derive(Debug, thiserror::Error)]
pub enum OwnKafkaError {
    /// No cached Kafka distribution was found.
    #[error("no Kafka jars under {0} — run `make services` first (it fetches them)")]
    NoJars(PathBuf),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `kafka.tools.StorageTool format` failed.
    #[error("formatting the broker's storage failed: {0}")]
    Format(String),
    /// The broker did not serve in time, or exited; the tail of its log says why.
    #[error("the private Kafka broker on 127.0.0.1:{port} did not start: {log}")]
    NotStarted {
        /// Its client port.
        port: u16,
        /// The last lines of its log.
        log: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OwnKafkaError {
    let what = what.into();
    move |source| OwnKafkaError::Io { what, source }
}

/// A private single-node Kafka broker, killed (and its data removed) when dropped.
#[derive(Debug)]
pub struct OwnKafka {
    /// Its client port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    libs: PathBuf,
    child: Option<Child>,
}

impl OwnKafka {
    /// Formats a fresh broker on two free loopback ports and starts it; returns once it
    /// serves metadata. Blocks (a JVM start takes seconds).
    pub fn start() -> Result<OwnKafka, OwnKafkaError> {
        OwnKafka::start_with("")
    }

    /// Starts a broker as [`OwnKafka::start`] does, with `extra` (`key=value` lines) added
    /// to its configuration.
    pub fn start_with(extra: &str) -> Result<OwnKafka, OwnKafkaError> {
        let libs = jars()?;
        let port = reserve_port().map_err(io("finding a free port"))?;
        let controller_port = reserve_port().map_err(io("finding a free port"))?;
        let dir = std::env::temp_dir().join(format!("sluice-kafka-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).map_err(io("creating the data directory"))?;
        let mut kafka = OwnKafka {
            port,
            dir,
            libs,
            child: None,
        };
        kafka.write_config(controller_port, extra)?;
        kafka.format()?;
        kafka.resume()?;
        Ok(kafka)
    }

    /// Its bootstrap servers, `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL: an outage, as a crash or a lost machine looks to its
    /// clients, who see their connections refused). The data directory stays, so
    /// [`OwnKafka::resume`] brings back every topic, offset and transaction.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same ports and data (after [`OwnKafka::kill`]);
    /// returns once it serves metadata. Blocks.
    pub fn resume(&mut self) -> Result<(), OwnKafkaError> {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("kafka.log"))
            .map_err(io("opening the broker log"))?;
        let err = log.try_clone().map_err(io("opening the broker log"))?;
        let child = Command::new("java")
            .args([
                "-Xms128m",
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
            ])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2.properties").display()
            ))
            .arg(format!("-Dkafka.logs.dir={}", self.dir.display()))
            .arg("-cp")
            .arg(classpath(&self.libs))
            .arg("kafka.Kafka")
            .arg(self.dir.join("server.properties"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io("starting java (the JDK `make services` uses)"))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), OwnKafkaError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("log_level", "0")
            // Asked again soon: the default backoff grows to 10 s while the broker is away.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "500")
            .create()
            .map_err(|e| OwnKafkaError::NotStarted {
                port: self.port,
                log: e.to_string(),
            })?;
        loop {
            let exited = !matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)));
            if exited || Instant::now() > deadline {
                self.kill();
                return Err(OwnKafkaError::NotStarted {
                    port: self.port,
                    log: self.log_tail(),
                });
            }
            if consumer
                .fetch_metadata(None, Duration::from_secs(2))
                .is_ok_and(|m| !m.brokers().is_empty())
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn write_config(&self, controller_port: u16, extra: &str) -> Result<(), OwnKafkaError> {
        let (port, data) = (self.port, self.dir.join("data"));
        let server = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller_port}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
             inter.broker.listener.name=PLAINTEXT\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             log.dirs={}\n\
             auto.create.topics.enable=false\n\
             num.partitions=1\n\
             default.replication.factor=1\n\
             min.insync.replicas=1\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             transaction.state.log.num.partitions=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             group.initial.rebalance.delay.ms=0\n\
             num.network.threads=2\n\
             num.io.threads=2\n\
             num.recovery.threads.per.data.dir=1\n\
             {extra}",
            data.display()
        );
        write(&self.dir.join("server.properties"), &server)?;
        write(
            &self.dir.join("log4j2.properties"),
            "status = warn\n\
             name = sluice-own-kafka\n\
             appender.out.type = Console\n\
             appender.out.name = STDOUT\n\
             appender.out.layout.type = PatternLayout\n\
             appender.out.layout.pattern = [%d] %p %m (%c)%n\n\
             rootLogger.level = WARN\n\
             rootLogger.appenderRef.out.ref = STDOUT\n\
             logger.txn.name = kafka.coordinator.transaction\n\
             logger.txn.level = INFO\n",
        )
    }

    fn format(&self) -> Result<(), OwnKafkaError> {
        let output = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2.properties").display()
            ))
            .arg("-cp")
            .arg(classpath(&self.libs))
            .args(["kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c"])
            .arg(self.dir.join("server.properties"))
            .arg("--ignore-formatted")
            .output()
            .map_err(io("running kafka.tools.StorageTool"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(OwnKafkaError::Format(format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// The last lines of the broker's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("kafka.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for OwnKafka {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("SLUICE_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The `libs` directory of the first cached Kafka version (`$SLUICE_CACHE`, default
/// `~/.cache/sluice`), as `tests/services/kafka.sh` picks it.
fn jars() -> Result<PathBuf, OwnKafkaError> {
    let cache = std::env::var_os("SLUICE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/sluice")))
        .unwrap_or_else(|| PathBuf::from(".cache/sluice"));
    VERSIONS
        .iter()
        .map(|v| cache.join(format!("kafka-{v}")))
        .find(|dir| dir.join(".complete").is_file() && dir.join("libs").is_dir())
        .map(|dir| dir.join("libs"))
        .ok_or(OwnKafkaError::NoJars(cache))
}

fn classpath(libs: &Path) -> String {
    format!("{}/*", libs.display())
}

fn write(path: &Path, text: &str) -> Result<(), OwnKafkaError> {
    let mut file =
        std::fs::File::create(path).map_err(io(format!("writing {}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(io(format!("writing {}", path.display())))
}
