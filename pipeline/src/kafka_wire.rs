//! Requests to Kafka brokers in the wire protocol itself (the `kafka-protocol` crate), for
//! the few calls librdkafka has none for — ending a transaction a broker left open
//! (`job/hanging.rs`). Plain TCP, one connection per request, as the job's Kafka
//! connections are plain.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

/// How long connecting to a broker, and each read or write of a request, may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read: these calls' answers are a few KiB, and a garbled length must
/// not make the job allocate gigabytes.
const MAX_ANSWER: usize = 64 << 20;

/// A broker could not be reached or its answer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("broker {broker}: {message}")]
pub struct WireError {
    /// The broker's address.
    pub broker: String,
    /// What went wrong.
    pub message: String,
}

fn wire_error(broker: &str, message: String) -> WireError {
    WireError {
        broker: broker.to_owned(),
        message,
    }
}

/// Sends `request` (at `version`) to the broker at `address` on a connection of its own and
/// reads the answer.
pub fn call<Req, Resp>(
    address: &str,
    key: ApiKey,
    version: i16,
    request: &Req,
) -> Result<Resp, WireError>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let io = |what: &str, e: std::io::Error| wire_error(address, format!("{what}: {e}"));
    let codec = |what: &str, e: &dyn std::fmt::Display| wire_error(address, format!("{what}: {e}"));
    let mut body = Vec::new();
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("sluice")));
    header
        .encode(&mut body, Req::header_version(version))
        .map_err(|e| codec("encoding the request header", &e))?;
    request
        .encode(&mut body, version)
        .map_err(|e| codec("encoding the request", &e))?;
    let size = i32::try_from(body.len())
        .map_err(|_| wire_error(address, "request too large".to_owned()))?;

    let target = std::net::ToSocketAddrs::to_socket_addrs(address)
        .map_err(|e| io("resolving", e))?
        .next()
        .ok_or_else(|| wire_error(address, "resolves to no address".to_owned()))?;
    let mut stream =
        TcpStream::connect_timeout(&target, REQUEST_TIMEOUT).map_err(|e| io("connecting", e))?;
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| io("setting timeouts", e))?;
    stream
        .write_all(&size.to_be_bytes())
        .and_then(|()| stream.write_all(&body))
        .map_err(|e| io("sending", e))?;
    let mut length = [0u8; 4];
    stream
        .read_exact(&mut length)
        .map_err(|e| io("reading the answer", e))?;
    let length = usize::try_from(i32::from_be_bytes(length))
        .ok()
        .filter(|n| *n <= MAX_ANSWER)
        .ok_or_else(|| wire_error(address, "an answer of impossible length".to_owned()))?;
    let mut answer = vec![0u8; length];
    stream
        .read_exact(&mut answer)
        .map_err(|e| io("reading the answer", e))?;
    let mut buf: &[u8] = &answer;
    ResponseHeader::decode(&mut buf, Resp::header_version(version))
        .map_err(|e| codec("decoding the answer's header", &e))?;
    Resp::decode(&mut buf, version).map_err(|e| codec("decoding the answer", &e))
}
