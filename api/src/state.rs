//! What every handler shares.

use std::sync::Arc;

use sluice_controller::{ControllerMetrics, Waker};
use sluice_provisioners::kafka::KafkaProvisioner;
use sluice_store::{SecretBox, Store};
use tokio::sync::watch;

use crate::approvals::Policy;

use crate::auth::jwt::OidcVerifier;

/// The shared state of the API server. Build it with [`AppState::new`] and the `with_*`
/// methods, so adding a capability does not change every caller.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AppState {
    /// The metadata store: the one source of truth.
    pub store: Store,
    /// Who must approve products.
    pub policy: Arc<Policy>,
    /// Verifies OIDC JWTs of people; `None` when OIDC is not configured (JWTs are refused).
    pub oidc: Option<Arc<OidcVerifier>>,
    /// Seals target credentials before they are stored (see `docs/secrets.md`). `new` gives
    /// a random key that nothing else knows; `serve` sets the one derived from the secret key.
    pub secrets: SecretBox,
    /// Wakes the in-process controller after a change; `None` when none runs here (the
    /// controller of another replica then sees the change at its next resync).
    pub controller: Option<Waker>,
    /// The in-process controller's counters, shown on `/metrics`.
    pub controller_metrics: Option<Arc<ControllerMetrics>>,
    /// Reads source topics for plans (backfill estimates, retention pre-flight, partition
    /// counts); `None` when `SLUICE_KAFKA_BOOTSTRAP` is not set, and plans say so.
    pub kafka: Option<Arc<KafkaProvisioner>>,
    /// Turns true when the server shuts down: live streams end, so a graceful shutdown is
    /// not held up by clients that never hang up.
    closing: Arc<watch::Sender<bool>>,
}

impl AppState {
    /// State over `store`, with every optional capability off.
    pub fn new(store: Store) -> Self {
        AppState {
            store,
            policy: Arc::new(Policy::default()),
            oidc: None,
            secrets: SecretBox::ephemeral(),
            controller: None,
            controller_metrics: None,
            kafka: None,
            closing: Arc::new(watch::channel(false).0),
        }
    }

    /// Ends every live stream (status events) of this state, now and later: called when
    /// the server begins to shut down.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// A receiver that turns true when [`AppState::close_streams`] is called.
    pub fn streams_closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Decides approvals by `policy` instead of the default policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Accepts OIDC JWTs verified by `verifier`, besides API tokens.
    pub fn with_oidc(mut self, verifier: Arc<OidcVerifier>) -> Self {
        self.oidc = Some(verifier);
        self
    }

    /// Wakes `waker`'s controller after every change to a product.
    pub fn with_controller(mut self, waker: Waker) -> Self {
        self.controller = Some(waker);
        self
    }

    /// Shows `metrics` (the in-process controller's) on `/metrics`.
    pub fn with_controller_metrics(mut self, metrics: Arc<ControllerMetrics>) -> Self {
        self.controller_metrics = Some(metrics);
        self
    }

    /// Tells the in-process controller, if any, that a product changed.
    pub fn wake_controller(&self) {
        if let Some(waker) = &self.controller {
            waker.wake();
        }
    }

    /// Seals credentials with `secrets` (derived from the operator's secret key in `serve`)
    /// instead of a random key.
    pub fn with_secrets(mut self, secrets: SecretBox) -> Self {
        self.secrets = secrets;
        self
    }

    /// Reads source topics through `kafka` (built once, shared by every request).
    pub fn with_kafka(mut self, kafka: Arc<KafkaProvisioner>) -> Self {
        self.kafka = Some(kafka);
        self
    }
}
