//! The `sluice` binary as a user runs it: help, exit codes and `serve` answering `/healthz`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A private data dir for this run, so no developer's .sluice/services.env leaks into the
/// tests. A test binary has no hook at exit, so the dirs of earlier runs whose process is
/// gone are removed here instead.
fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        const PREFIX: &str = "sluice-cli-test-";
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if let Some(pid) = name.to_string_lossy().strip_prefix(PREFIX)
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = tmp.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn sluice() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.env("SLUICE_DATA_DIR", data_dir())
        .env_remove("SLUICE_LISTEN")
        .env_remove("SLUICE_URL")
        .env_remove("SLUICE_TOKEN");
    cmd
}

#[test]
fn help_lists_every_verb_of_the_contract() {
    let out = sluice().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for verb in [
        "serve", "worker", "apply", "plan", "get", "describe", "approve", "reject", "delete",
        "verify", "audit", "token",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{verb} "))),
            "`{verb}` missing from --help:\n{help}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = sluice().args(["apply"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--filename"));
}

#[test]
fn bad_listen_address_is_a_one_line_error_naming_the_variable() {
    let out = sluice()
        .arg("serve")
        .env("SLUICE_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("sluice serve: SLUICE_LISTEN: invalid value `not-an-address`"),
        "{stderr}"
    );
}

#[test]
fn completion_scripts_are_generated() {
    let out = sluice().args(["completion", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_sluice()"));
}

#[tokio::test]
async fn serve_answers_healthz_and_stops_on_sigterm() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = sluice()
        .arg("serve")
        .env("SLUICE_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let url = format!("http://127.0.0.1:{port}/healthz");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        match client.get(&url).send().await {
            Ok(resp) => {
                assert_eq!(resp.status(), 200);
                break resp.text().await.unwrap();
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                let _ = child.kill();
                panic!("sluice serve never answered {url}: {e}");
            }
        }
    };
    assert_eq!(body, r#"{"status":"ok"}"#);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status} after SIGTERM");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The admin token the test servers are started with.
const ADMIN_TOKEN: &str = "slc_cli-test-admin-token";

/// A `sluice serve` on a free port with its own SQLite store, killed on drop.
struct Server {
    child: std::process::Child,
    url: String,
    _dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start_server(label: &str) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir =
        std::env::temp_dir().join(format!("sluice-cli-{label}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Everything the server prints, at the most verbose level, is kept for inspection.
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("serve")
        .env("SLUICE_DATA_DIR", &dir)
        .env("SLUICE_LISTEN", format!("127.0.0.1:{port}"))
        .env("SLUICE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SLUICE_LOG", "trace")
        .env_remove("SLUICE_DATABASE_URL")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sluice serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

fn client(server: &Server) -> Command {
    let mut cmd = sluice();
    cmd.env("SLUICE_URL", &server.url)
        .env("SLUICE_TOKEN", ADMIN_TOKEN)
        .env(
            "SLUICE_TEST_POSTGRES_URL",
            "postgres://admin:pw@127.0.0.1:1/postgres",
        )
        .env("SLUICE_TEST_OPENSEARCH_URL", "http://127.0.0.1:2")
        .env("SLUICE_TEST_REDIS_URL", "redis://admin:pw@127.0.0.1:3/0");
    cmd
}

fn retail_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail")
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn retail_example_applies_and_round_trips_through_get() {
    let server = start_server("retail");
    let (code, stdout, stderr) = run(client(&server).args(["apply", "-f"]).arg(retail_dir()));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    for line in [
        "dataset/shop.orders created",
        "targetcluster/shared-pg created",
        "dataproduct/team-payments/orders-enriched created",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }

    let (code, yaml, stderr) = run(client(&server).args([
        "get",
        "product",
        "orders-enriched",
        "--team",
        "team-payments",
        "-o",
        "yaml",
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    let got: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let applied: serde_json::Value = serde_yaml::Deserializer::from_str(
        &std::fs::read_to_string(retail_dir().join("products.yaml")).unwrap(),
    )
    .map(|d| serde::Deserialize::deserialize(d).unwrap())
    .find(|d: &serde_json::Value| d["metadata"]["name"] == "orders-enriched")
    .unwrap();
    assert_eq!(got["spec"], applied["spec"]);
    assert_eq!(got["metadata"]["team"], applied["metadata"]["team"]);
    assert_eq!(got["status"]["phase"], "PendingApproval");

    // What `get -o yaml` printed applies back unchanged.
    let file = server._dir.join("round-trip.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let (code, stdout, stderr) = run(client(&server).args(["apply", "-f"]).arg(&file));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "dataproduct/team-payments/orders-enriched unchanged"
    );

    // TEAM/NAME works too, and the table lists all three products.
    let (code, _, _) = run(client(&server).args([
        "get",
        "product",
        "team-payments/orders-enriched",
        "-o",
        "json",
    ]));
    assert_eq!(code, Some(0));
    let (_, table, _) = run(client(&server).args(["get", "products"]));
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.lines().next().unwrap().starts_with("TEAM"));
}

#[test]
fn rejected_specs_exit_1_with_file_document_and_path() {
    let server = start_server("reject");
    let (code, _, stderr) = run(client(&server).args(["apply", "-f"]).arg(retail_dir()));
    assert_eq!(code, Some(0), "{stderr}");
    let bad = server._dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: sluice.dev/v1alpha1\nkind: DataProduct\nmetadata: {name: broken, team: team-x}\n\
         spec:\n  sources: [{name: o, dataset: shop.orders}]\n  key: o.id\n  fields: {id: o.idd}\n\
         \x20 target: {cluster: shared-pg, name: broken}\n",
    )
    .unwrap();
    let (code, _, stderr) = run(client(&server).args(["apply", "-f"]).arg(&bad));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.yaml document 1 (DataProduct team-x/broken): /spec/fields/id:"),
        "{stderr}"
    );
    assert!(stderr.contains("no field `idd`"), "{stderr}");
}

#[test]
fn unset_variables_and_unreachable_servers_are_one_line_errors() {
    let server = start_server("vars");
    let (code, _, stderr) = run(client(&server)
        .env_remove("SLUICE_TEST_POSTGRES_URL")
        .args(["apply", "-f"])
        .arg(retail_dir().join("targets.yaml")));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("environment variable SLUICE_TEST_POSTGRES_URL is not set"),
        "{stderr}"
    );

    let (code, _, stderr) = run(sluice().args(["get", "datasets", "--url", "http://127.0.0.1:9"]));
    assert_eq!(code, Some(1));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot reach Sluice at http://127.0.0.1:9"),
        "{stderr}"
    );

    let (code, _, stderr) = run(client(&server).args(["get", "product", "orders-enriched"]));
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = run(client(&server).args(["get", "widgets"]));
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn tokens_are_created_used_revoked_and_the_audit_log_verifies() {
    let server = start_server("tokens");
    let (code, stdout, stderr) = run(client(&server).args([
        "token",
        "create",
        "--team",
        "team-shop",
        "--role",
        "requester",
        "-o",
        "json",
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    let created: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("slc_"));

    let (code, _, stderr) = run(client(&server)
        .env("SLUICE_TOKEN", &token)
        .args(["get", "datasets"]));
    assert_eq!(code, Some(0), "{stderr}");
    // A requester may not register target clusters.
    let (code, _, stderr) = run(client(&server)
        .env("SLUICE_TOKEN", &token)
        .args(["apply", "-f"])
        .arg(retail_dir().join("targets.yaml")));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("may not PUT"), "{stderr}");

    let (_, list, _) = run(client(&server).args(["token", "list"]));
    assert!(list.contains("requester-team-shop"), "{list}");
    assert!(!list.contains(&token), "the token text is listed");
    let (code, _, _) = run(client(&server).args(["token", "revoke", "requester-team-shop"]));
    assert_eq!(code, Some(0));
    let (code, _, stderr) = run(client(&server)
        .env("SLUICE_TOKEN", &token)
        .args(["get", "datasets"]));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("(401)"), "{stderr}");

    let (code, stdout, stderr) = run(client(&server).args(["audit", "verify"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("audit log verified"), "{stdout}");
    let (_, lines, _) = run(client(&server).args(["audit", "export"]));
    assert!(lines.lines().any(|l| l.contains("token.revoke")), "{lines}");
}

#[test]
fn secrets_never_reach_the_logs() {
    let server = start_server("logs");
    let password = "pg-password-that-must-not-leak";
    let (code, _, stderr) = run(client(&server)
        .env(
            "SLUICE_TEST_POSTGRES_URL",
            format!("postgres://admin:{password}@127.0.0.1:1/postgres"),
        )
        .args(["apply", "-f"])
        .arg(retail_dir()));
    assert_eq!(code, Some(0), "{stderr}");
    let (_, created, _) = run(client(&server).args([
        "token",
        "create",
        "--team",
        "team-shop",
        "--role",
        "viewer",
        "-o",
        "json",
    ]));
    let token: serde_json::Value = serde_json::from_str(created.trim()).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let (code, _, _) = run(client(&server).env("SLUICE_TOKEN", &token).args([
        "get",
        "targetclusters",
        "-o",
        "yaml",
    ]));
    assert_eq!(code, Some(0));
    let (_, shown, _) =
        run(client(&server).args(["get", "targetcluster", "shared-pg", "-o", "json"]));
    assert!(
        !shown.contains(password),
        "the API returned the password: {shown}"
    );
    let (_, audit, _) = run(client(&server).args(["audit", "export"]));
    assert!(
        !audit.contains(password),
        "the audit log holds the password"
    );
    std::thread::sleep(Duration::from_millis(200));

    let log = std::fs::read_to_string(server._dir.join("server.log")).unwrap();
    assert!(
        log.lines().count() > 20,
        "the server logged too little to prove anything:\n{log}"
    );
    for secret in [password, token.as_str(), ADMIN_TOKEN] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

#[test]
fn a_bad_policy_file_stops_serve_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("sluice-cli-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        "autoApprove:\n  - {name: x, maxClassification: secret}\n",
    )
    .unwrap();
    let out = sluice()
        .arg("serve")
        .env("SLUICE_DATA_DIR", &dir)
        .env("SLUICE_LISTEN", "127.0.0.1:0")
        .env("SLUICE_POLICY_FILE", &policy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SLUICE_POLICY_FILE: invalid policy file"),
        "{stderr}"
    );
    assert!(stderr.contains("secret"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
