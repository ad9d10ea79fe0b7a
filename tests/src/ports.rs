//! Loopback ports for the servers tests start, stop and start again themselves.
//!
//! A port the kernel hands out (a bind to port 0) lies in its ephemeral range, and is
//! anyone's again the moment the server stops: during an outage a test makes, another
//! test's bind to port 0 can take it, and the server cannot come back on it. These ports
//! come from below that range (and apart from the shared services' ports), are checked
//! free, and are never handed out twice in one process.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::ops::Range;
use std::sync::Mutex;

/// Where the ports come from: below Linux's default ephemeral range (32768–60999), above
/// the shared services' default ports (15432–19301), below their CI-clone alternatives.
const RANGE: Range<u16> = 21_000..25_000;

/// A loopback port nothing listens on, not handed out before in this process.
pub fn reserve_port() -> Result<u16, std::io::Error> {
    static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..1_000 {
        let port = rand::random_range(RANGE);
        if !taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrNotAvailable,
        format!("no free loopback port in {RANGE:?}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_in_range_and_never_repeated() {
        let ports: Vec<u16> = (0..200).map(|_| reserve_port().unwrap()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(ports.iter().all(|p| RANGE.contains(p)));
        for port in ports.iter().take(20) {
            TcpListener::bind(("127.0.0.1", *port)).unwrap();
        }
    }
}
