//! What every handler shares.

use sluice_store::Store;

/// The shared state of the API server.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The metadata store: the one source of truth.
    pub store: Store,
}
