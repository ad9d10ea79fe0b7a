//! What every handler shares.

use sluice_store::Store;

/// The shared state of the API server. Build it with [`AppState::new`] and the `with_*`
/// methods, so adding a capability does not change every caller.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AppState {
    /// The metadata store: the one source of truth.
    pub store: Store,
}

impl AppState {
    /// State over `store`, with every optional capability off.
    pub fn new(store: Store) -> Self {
        AppState { store }
    }
}
