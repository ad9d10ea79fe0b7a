//! Transactional producer calls waited for with a bound of the job's own.
//!
//! librdkafka's `send_offsets_to_transaction` can wait past the timeout it is given while
//! the consumer group's coordinator is away (confluentinc/librdkafka#5456): a transform
//! making that call when its broker went down stayed in it until the broker came back, and
//! its job could not be stopped meanwhile. The call runs on a thread of its own instead,
//! waited for until it answers, the bound passes, or the job stops. A call given up on is
//! left to end by itself, holding the producer until it does; the transaction it belongs
//! to is never committed by this producer, and the job's next start fences it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{BaseProducer, ProducerContext};

/// How often a waiting call checks whether the job stops.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// Why a bounded call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call answered with an error.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The call did not answer in time; it is left to end by itself.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// The job was stopped while the call had not answered.
    #[error("the job stopped before an answer")]
    Stopped,
    /// The call's thread could not be started, or ended without answering.
    #[error("its thread failed: {0}")]
    Thread(String),
}

/// Runs `call` on `producer` on a thread of its own and waits for its answer for at most
/// `limit`, or until `stop` is set.
pub(super) fn bounded_call<C: ProducerContext + 'static>(
    producer: &Arc<BaseProducer<C>>,
    stop: &AtomicBool,
    limit: Duration,
    call: impl FnOnce(&BaseProducer<C>) -> KafkaResult<()> + Send + 'static,
) -> Result<(), CallError> {
    let producer = Arc::clone(producer);
    let (answer, answered) = sync_channel(1);
    std::thread::Builder::new()
        .name("sluice-txn-call".to_owned())
        .spawn(move || {
            // The waiter may have given up: an answer nobody reads is dropped.
            let _ = answer.send(call(&producer));
        })
        .map_err(|e| CallError::Thread(e.to_string()))?;
    let deadline = Instant::now() + limit;
    loop {
        match answered.recv_timeout(CHECK_EVERY) {
            Ok(result) => return result.map_err(CallError::Kafka),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(CallError::Thread("it ended without answering".to_owned()));
            }
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => {
                return Err(CallError::Stopped);
            }
            Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                return Err(CallError::NoAnswer(limit));
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::ClientConfig;

    /// A producer that never connects: the calls below never reach it.
    fn producer() -> Arc<BaseProducer> {
        Arc::new(
            ClientConfig::new()
                .set("bootstrap.servers", "127.0.0.1:1")
                .create()
                .expect("a producer is created without connecting"),
        )
    }

    #[test]
    fn an_answer_is_returned_as_it_comes() {
        let stop = AtomicBool::new(false);
        let ok = bounded_call(&producer(), &stop, Duration::from_secs(5), |_| Ok(()));
        assert!(ok.is_ok(), "{ok:?}");
        let failed = bounded_call(&producer(), &stop, Duration::from_secs(5), |_| {
            Err(KafkaError::Canceled)
        });
        assert!(
            matches!(failed, Err(CallError::Kafka(KafkaError::Canceled))),
            "{failed:?}"
        );
    }

    /// A sleeping call stands in for librdkafka's call that outlives its timeout (a fault
    /// made real only by taking a broker away at the right moment, which
    /// `faults::jobs_stop_promptly_while_kafka_is_away` does).
    #[test]
    fn a_call_that_does_not_answer_is_given_up_at_the_bound_or_at_the_stop() {
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        let late = bounded_call(&producer(), &stop, Duration::from_millis(300), |_| {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        });
        assert!(matches!(late, Err(CallError::NoAnswer(_))), "{late:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            stopping.store(true, Ordering::SeqCst);
        });
        let started = Instant::now();
        let stopped = bounded_call(&producer(), &stop, Duration::from_secs(60), |_| {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        });
        assert!(matches!(stopped, Err(CallError::Stopped)), "{stopped:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
