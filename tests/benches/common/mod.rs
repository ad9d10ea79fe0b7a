//! What the load benchmarks share beyond `sluice_tests::bench`: the in-process API (it needs
//! the API crate and axum, which only the benches and tests depend on), the names a run
//! creates things under, and the run itself (a runtime, the cleanup, the exit code).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use http_body_util::BodyExt;
use serde_json::Value;
use sluice_api::auth::Role;
use sluice_store::Store;
use sluice_tests::TestNamespace;
use tower::ServiceExt;

/// Everything a run creates is named after these.
pub struct Names {
    /// The run's namespace (topic prefix, schema, key prefix).
    pub ns: TestNamespace,
    /// Its team, `t<suffix>`.
    pub team: String,
    /// A short unique suffix for names the namespace does not prefix.
    pub suffix: String,
    /// A temporary directory of its own, removed by the cleanup.
    pub dir: std::path::PathBuf,
}

impl Names {
    /// Fresh names for a run of the bench `label`; creates its temporary directory.
    pub fn new(label: &str) -> Arc<Names> {
        let ns = TestNamespace::new(label);
        let suffix = ns.id().rsplit('_').next().unwrap()[..10].to_owned();
        let dir = std::env::temp_dir().join(format!("sluice-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Arc::new(Names {
            ns,
            team: format!("t{suffix}"),
            suffix,
            dir,
        })
    }
}

/// Runs `bench` on a runtime of its own, then `cleanup` whatever the outcome, and exits 1
/// when the bench failed (its message on stderr), 2 when it panicked.
pub fn run<B, C>(label: &str, names: &Arc<Names>, bench: B, cleanup: impl FnOnce() -> C)
where
    B: Future<Output = Result<(), String>> + Send + 'static,
    C: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async move { tokio::spawn(bench).await });
    println!("cleaning up everything the run created ({})", names.ns.id());
    runtime.block_on(cleanup());
    runtime.shutdown_timeout(Duration::from_secs(10));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(message)) => {
            eprintln!("{label} FAILED: {message}");
            std::process::exit(1);
        }
        Err(panic) => {
            eprintln!("{label} panicked: {panic}");
            std::process::exit(2);
        }
    }
}

/// The in-process API (the real router over a SQLite store), as in the integration tests.
pub struct Api {
    /// The real router.
    pub router: axum::Router,
    /// Its metadata store.
    pub store: Store,
}

impl Api {
    /// Sends one request as `token`; panics unless it succeeds; the JSON body (or null).
    pub async fn send(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Value {
        let (status, value) = self.exchange(token, method, path, body).await;
        assert!(status.is_success(), "{path}: {status}: {value}");
        value
    }

    /// Sends one request as `token`; its status and JSON body (or null), whatever they are.
    pub async fn exchange(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (axum::http::StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Vec::new, |b| b.to_string().into_bytes());
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// A fresh API token of `role` for `team`.
    pub async fn token(&self, role: Role, team: &str) -> String {
        let token = format!("slc_bench-{role}-{team}");
        self.store
            .create_token(
                sluice_store::NewToken {
                    name: format!("{role}-{team}"),
                    team: team.to_owned(),
                    role: role.as_str().to_owned(),
                    hash: sluice_api::auth::tokens::hash(&token),
                    expires_at: None,
                },
                &sluice_store::Audit::new("bench", ""),
            )
            .await
            .unwrap();
        token
    }
}
