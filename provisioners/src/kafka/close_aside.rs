//! Group consumers whose close never holds the caller's thread.
//!
//! Dropping a librdkafka consumer that has a `group.id` closes it, and the close waits for
//! the group's requests still open — an asynchronous offset commit, a coordinator lookup —
//! for as long as the broker is away, however long that is. Dropped on a runtime worker or
//! on a job's thread during a Kafka outage, such a consumer would hold that thread until
//! Kafka returns, and stall everything queued behind it. [`CloseAside`] hands the close to
//! a thread of its own, which ends when the close does.

use std::ops::Deref;

use rdkafka::consumer::BaseConsumer;

/// A group consumer that, when dropped, is closed on a thread of its own.
pub struct CloseAside(Option<BaseConsumer>);

impl CloseAside {
    /// Wraps `consumer`; it is used through `Deref` as the consumer itself.
    pub fn new(consumer: BaseConsumer) -> CloseAside {
        CloseAside(Some(consumer))
    }
}

impl Deref for CloseAside {
    type Target = BaseConsumer;

    fn deref(&self) -> &BaseConsumer {
        self.0
            .as_ref()
            .expect("the consumer is taken only when dropped")
    }
}

impl Drop for CloseAside {
    fn drop(&mut self) {
        let Some(consumer) = self.0.take() else {
            return;
        };
        let closing = std::thread::Builder::new()
            .name("sluice-kafka-close".to_owned())
            .spawn(move || drop(consumer));
        if let Err(e) = closing {
            // The consumer went with the closure the failed spawn dropped: it was closed
            // here, which is all that is left to do.
            tracing::warn!(error = %e, "no thread to close a Kafka consumer on; closed in place");
        }
    }
}

impl std::fmt::Debug for CloseAside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloseAside").finish_non_exhaustive()
    }
}
