//! `GET /api/v1/products/{team}/{name}/events`: a product's status as a live stream of
//! server-sent events (`text/event-stream`).
//!
//! The stream sends `event: status` with the body `GET …/status` would return, at once and
//! again whenever it changes; `event: deleted` and its end when the product is gone; and a
//! keep-alive comment every 15 s. Changes are noticed when this process writes the store (an
//! in-process controller, an approval) and otherwise by reading the product every second,
//! so writes of other replicas show within a second. Streams end when the server shuts
//! down, so they never hold a graceful shutdown up.
//!
//! It takes a normal `Authorization: Bearer` header: browsers read it with `fetch` and a
//! stream reader (`EventSource` cannot send headers).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::{Value, json};
use sluice_store::{ObjectKey, Store};
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::apply;
use crate::error::{ApiError, ApiResult, ProblemDetails};
use crate::state::AppState;

/// How often the product is read when no write of this process woke the stream.
const POLL: Duration = Duration::from_secs(1);
/// How often an idle stream sends a comment, so proxies and clients keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_product_events))
}

/// A live stream of the product's status (server-sent events): `event: status` with the
/// JSON of `GET …/status` at once and after every change, `event: deleted` (then the end)
/// when the product is removed, and a keep-alive comment every 15 s.
#[utoipa::path(get, path = "/api/v1/products/{team}/{name}/events", tag = "products",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "`event: status` / `data: <status JSON>` now and on each change; `event: deleted` / `data: {\"team\", \"name\"}` then the end"),
        (status = 404, body = ProblemDetails)))]
async fn get_product_events(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let key = ObjectKey::data_product(team, name);
    // Subscribed before the first read, so no write after it goes unnoticed.
    let changes = state.store.changes();
    let object = state
        .store
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(apply::describe(&key)))?;
    let watcher = Watcher {
        changes: Some(changes),
        closing: state.streams_closing(),
        store: state.store.clone(),
        key,
        last: status_text(object.status),
        first: true,
        done: false,
    };
    let sse = Sse::new(watcher.into_stream())
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"));
    let mut response = sse.into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// What one stream has sent and watches.
struct Watcher {
    store: Store,
    key: ObjectKey,
    /// Marked after this process's store writes; `None` once its sender is gone.
    changes: Option<watch::Receiver<()>>,
    /// Turns true when the server shuts down.
    closing: watch::Receiver<bool>,
    /// The status last sent (or to send first), as its JSON text.
    last: String,
    first: bool,
    done: bool,
}

impl Watcher {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut watcher| async move {
            let event = watcher.next_event().await?;
            Some((Ok(event), watcher))
        })
    }

    /// The next event to send, or `None` when the stream is over.
    async fn next_event(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        if self.first {
            self.first = false;
            return Some(status_event(&self.last));
        }
        loop {
            if !self.wait().await {
                return None;
            }
            match self.store.get(&self.key).await {
                Ok(None) => {
                    self.done = true;
                    let gone = json!({"team": self.key.team(), "name": self.key.name()});
                    return Some(Event::default().event("deleted").data(gone.to_string()));
                }
                Ok(Some(object)) => {
                    let text = status_text(object.status);
                    if text != self.last {
                        self.last = text;
                        return Some(status_event(&self.last));
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, key = %self.key, "status stream cannot read the product; retrying");
                }
            }
        }
    }

    /// Waits for a write of this process or the poll interval; `false` when the server is
    /// shutting down.
    async fn wait(&mut self) -> bool {
        enum Woken {
            Write,
            WriterGone,
            Tick,
            Closing,
        }
        let Watcher {
            changes, closing, ..
        } = self;
        if *closing.borrow() {
            return false;
        }
        let write = async {
            match changes {
                Some(changes) => match changes.changed().await {
                    Ok(()) => Woken::Write,
                    Err(_) => Woken::WriterGone,
                },
                None => std::future::pending().await,
            }
        };
        let woken = tokio::select! {
            woken = write => woken,
            () = tokio::time::sleep(POLL) => Woken::Tick,
            // A closed channel means the server state is gone: end as well.
            changed = closing.changed() => match changed {
                Ok(()) if !*closing.borrow() => Woken::Tick,
                _ => Woken::Closing,
            },
        };
        match woken {
            Woken::Write | Woken::Tick => true,
            Woken::WriterGone => {
                self.changes = None;
                true
            }
            Woken::Closing => false,
        }
    }
}

/// The status as `GET …/status` returns it (`null` when it has none), as JSON text.
fn status_text(status: Option<Value>) -> String {
    status.unwrap_or(Value::Null).to_string()
}

fn status_event(text: &str) -> Event {
    Event::default().event("status").data(text)
}
