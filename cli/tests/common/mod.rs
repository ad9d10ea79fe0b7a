//! What the CLI's tests share: a `sluice serve` of their own, on a private port and data
//! dir, with the Kafka of `make services`; killed (and its dir removed unless the test
//! failed) when dropped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// One running `sluice serve`.
pub struct Serve {
    pub dir: PathBuf,
    pub port: u16,
    admin_token: &'static str,
    child: Child,
}

impl Serve {
    /// Starts `sluice serve` with `admin_token` as its admin, `secret_key`, and `env` on top
    /// (e.g. the controller's settings); waits until it listens.
    pub fn start(
        label: &str,
        admin_token: &'static str,
        secret_key: &str,
        env: &[(&str, &str)],
    ) -> Serve {
        let port = sluice_tests::reserve_port().unwrap();
        let dir = std::env::temp_dir().join(format!("sluice-{label}-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("serve")
            .env("SLUICE_DATA_DIR", &dir)
            .env("SLUICE_LISTEN", format!("127.0.0.1:{port}"))
            .env("SLUICE_ADMIN_TOKEN", admin_token)
            .env("SLUICE_SECRET_KEY", secret_key)
            .env(
                "SLUICE_KAFKA_BOOTSTRAP",
                &sluice_tests::services().kafka_bootstrap,
            )
            .env_remove("SLUICE_DATABASE_URL")
            .env_remove("SLUICE_OIDC_ISSUER")
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sluice serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve {
            dir,
            port,
            admin_token,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `sluice ARGS` as the admin against this server: success, stdout, stderr.
    pub fn sluice(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env("SLUICE_DATA_DIR", &self.dir)
            .env("SLUICE_URL", self.url())
            .env("SLUICE_TOKEN", self.admin_token)
            .env(
                "SLUICE_KAFKA_BOOTSTRAP",
                &sluice_tests::services().kafka_bootstrap,
            )
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `sluice ARGS` as the admin; panics with its output unless it succeeds. Its stdout.
    pub fn must(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.sluice(args);
        assert!(ok, "sluice {args:?}:\n{stdout}{stderr}");
        stdout
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Deletes the test's topics (the demo's and the product's) however the test ends.
pub struct Topics(pub String);

impl Drop for Topics {
    fn drop(&mut self) {
        let admin: AdminClient<DefaultClientContext> = kafka().create().unwrap();
        let consumer: BaseConsumer = kafka().create().unwrap();
        let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(10)) else {
            return;
        };
        let names: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|n| n.contains(&self.0))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = runtime.block_on(admin.delete_topics(&names, &AdminOptions::new()));
    }
}

fn kafka() -> rdkafka::config::ClientConfig {
    let mut config = rdkafka::config::ClientConfig::new();
    config.set(
        "bootstrap.servers",
        &sluice_tests::services().kafka_bootstrap,
    );
    config
}
