//! The credentials a provisioner hands out for a product's reader.

use std::fmt;

/// A product's reader credentials. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The role or user to log in as.
    pub user: String,
    /// Its password, to be sealed by the caller and never logged.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}
