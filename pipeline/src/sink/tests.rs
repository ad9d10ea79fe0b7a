//! Sinks against the real services.
