//! The `sluice` binary as a user runs it: help, exit codes and `serve` answering `/healthz`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sluice() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    // A private data dir so no developer's .sluice/services.env leaks into the test.
    let dir = std::env::temp_dir().join(format!("sluice-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    cmd.env("SLUICE_DATA_DIR", &dir)
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
fn unimplemented_verbs_say_so_and_exit_2() {
    let out = sluice()
        .args(["verify", "orders-enriched"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "sluice verify: not implemented yet in this build"
    );
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
