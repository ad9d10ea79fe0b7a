//! The Kafka Connect baseline of the PostgreSQL loading benchmark.
//!
//! The baseline is a standalone Kafka Connect worker with the Debezium JDBC sink in upsert
//! mode, run by `tests/bench/connect/jdbc-sink.sh` (see `docs/bench-connect.md`). That sink
//! needs records with a schema, so the benchmark produces the same rows Sluice loads to a
//! topic of its own as JSON with an embedded Connect schema (`JsonConverter` with
//! `schemas.enable=true`), key and value: [`envelope_key`] and [`envelope_value`] (or an
//! [`Envelope`] made once per schema) write those records, [`run_jdbc_sink`] runs the sink
//! and returns its figures as a [`ConnectRun`].

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Map, Value};

/// The Connect schema type of one column, as the JDBC sink binds it to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectType {
    /// `boolean`.
    Boolean,
    /// `int16` (`smallint`).
    Int16,
    /// `int32` (`integer`).
    Int32,
    /// `int64` (`bigint`).
    Int64,
    /// `float` (`real`).
    Float32,
    /// `double` (`double precision`).
    Float64,
    /// `string` (`text`); a non-string value is written as its JSON text.
    String,
    /// Debezium's `io.debezium.time.ZonedTimestamp`: an ISO-8601 string with an offset,
    /// such as `2026-01-02T03:04:05Z` (`timestamptz`).
    ZonedTimestamp,
    /// Connect's `org.apache.kafka.connect.data.Timestamp`: epoch milliseconds
    /// (`timestamp`).
    Timestamp,
    /// Debezium's `io.debezium.data.Json`: the value is written as its JSON text
    /// (`jsonb` / `json`).
    Json,
}

impl ConnectType {
    /// The Connect type name and, for logical types, the schema name.
    fn schema_type(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::Boolean => ("boolean", None),
            Self::Int16 => ("int16", None),
            Self::Int32 => ("int32", None),
            Self::Int64 => ("int64", None),
            Self::Float32 => ("float", None),
            Self::Float64 => ("double", None),
            Self::String => ("string", None),
            Self::ZonedTimestamp => ("string", Some("io.debezium.time.ZonedTimestamp")),
            Self::Timestamp => ("int64", Some("org.apache.kafka.connect.data.Timestamp")),
            Self::Json => ("string", Some("io.debezium.data.Json")),
        }
    }

    /// `value` in the form this type's JSON payload needs; `null` stays `null`. Numbers
    /// and booleans given as strings are parsed; what cannot be converted is kept as is
    /// (the worker's `JsonConverter` then rejects the record).
    fn payload(self, value: &Value) -> Value {
        if value.is_null() {
            return Value::Null;
        }
        let text = value.as_str();
        match self {
            Self::Boolean => match text {
                Some("true") => Value::Bool(true),
                Some("false") => Value::Bool(false),
                _ => value.clone(),
            },
            Self::Int16 | Self::Int32 | Self::Int64 | Self::Timestamp => {
                let int = match value {
                    Value::Number(n) => n.as_i64().or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                            .map(|f| f as i64)
                    }),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                int.map_or_else(|| value.clone(), Value::from)
            }
            Self::Float32 | Self::Float64 => {
                match text.and_then(|s| s.trim().parse::<f64>().ok()) {
                    Some(f) => Value::from(f),
                    None => value.clone(),
                }
            }
            Self::String | Self::ZonedTimestamp => match value {
                Value::String(_) => value.clone(),
                other => Value::String(other.to_string()),
            },
            Self::Json => Value::String(value.to_string()),
        }
    }
}

/// One column of a record: its name, Connect type and whether it may be null.
pub type ConnectField<'a> = (&'a str, ConnectType, bool);

/// The Connect schema (as `JsonConverter` reads it) of a struct named `name` with
/// `fields`, in order.
pub fn connect_schema(name: &str, fields: &[ConnectField<'_>]) -> Value {
    let fields: Vec<Value> = fields
        .iter()
        .map(|&(field, ty, optional)| {
            let (type_name, logical) = ty.schema_type();
            let mut f = Map::new();
            f.insert("field".into(), field.into());
            f.insert("type".into(), type_name.into());
            f.insert("optional".into(), optional.into());
            if let Some(logical) = logical {
                f.insert("name".into(), logical.into());
                f.insert("version".into(), 1.into());
            }
            Value::Object(f)
        })
        .collect();
    serde_json::json!({
        "type": "struct",
        "name": name,
        "optional": false,
        "fields": fields,
    })
}

/// Writes records of one schema as `{"schema":…,"payload":…}` JSON, the schema text made
/// once.
#[derive(Debug, Clone)]
pub struct Envelope {
    schema_json: String,
    fields: Vec<(String, ConnectType)>,
}

impl Envelope {
    /// An envelope for structs named `name` with `fields`.
    pub fn new(name: &str, fields: &[ConnectField<'_>]) -> Self {
        Self {
            schema_json: connect_schema(name, fields).to_string(),
            fields: fields
                .iter()
                .map(|&(f, ty, _)| (f.to_owned(), ty))
                .collect(),
        }
    }

    /// `row` as one record: every schema field in order, taken from `row` by name (a
    /// missing one is `null`), converted to its type; other keys of `row` are left out.
    pub fn wrap(&self, row: &Map<String, Value>) -> String {
        let mut payload = Map::new();
        for (field, ty) in &self.fields {
            let value = row.get(field).map_or(Value::Null, |v| ty.payload(v));
            payload.insert(field.clone(), value);
        }
        let payload = Value::Object(payload).to_string();
        let mut out = String::with_capacity(self.schema_json.len() + payload.len() + 24);
        out.push_str("{\"schema\":");
        out.push_str(&self.schema_json);
        out.push_str(",\"payload\":");
        out.push_str(&payload);
        out.push('}');
        out
    }
}

/// The struct name of the value records [`envelope_value`] writes.
pub const VALUE_STRUCT: &str = "sluice.bench.Value";
/// The struct name of the key records [`envelope_key`] writes.
pub const KEY_STRUCT: &str = "sluice.bench.Key";

/// A record value for the JDBC sink: `row` (a row as Sluice loads it) under the Connect
/// schema `schema` (every column of the target table). For many records make one
/// [`Envelope`] with [`VALUE_STRUCT`] instead: the result is the same.
pub fn envelope_value(row: &Map<String, Value>, schema: &[ConnectField<'_>]) -> String {
    Envelope::new(VALUE_STRUCT, schema).wrap(row)
}

/// A record key for the JDBC sink: the product key columns `schema` taken from `key` (a
/// key object, or the whole row). With `primary.key.mode=record_key` these fields are the
/// table's primary key.
pub fn envelope_key(key: &Map<String, Value>, schema: &[ConnectField<'_>]) -> String {
    Envelope::new(KEY_STRUCT, schema).wrap(key)
}

/// Where the sink takes the primary key from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrimaryKeyMode {
    /// The record key's fields (the default; keys written by [`envelope_key`]).
    #[default]
    RecordKey,
    /// Fields of the record value, named by [`JdbcSinkOptions::pk_fields`].
    RecordValue,
}

/// What [`run_jdbc_sink`] runs.
#[derive(Debug, Clone)]
pub struct JdbcSinkOptions {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// The topic to load, holding [`Envelope`] records, produced before the run.
    pub topic: String,
    /// `postgres://user:password@host:port/db`; handed to the script through its
    /// environment, never on a command line.
    pub pg_url: String,
    /// The existing target table, `schema.table`.
    pub table: String,
    /// Also wait until the table holds this many rows.
    pub expect: Option<u64>,
    /// The sink's `batch.size` (`None`: the script's tuned default).
    pub batch_size: Option<u32>,
    /// Where the primary key comes from.
    pub pk_mode: PrimaryKeyMode,
    /// `primary.key.fields`, comma separated (needed with [`PrimaryKeyMode::RecordValue`]).
    pub pk_fields: Option<String>,
    /// The sink's `tasks.max` (`None`: the topic's partitions, at most the cores).
    pub tasks: Option<u32>,
    /// Extra connector properties (tuning; they override the script's), e.g.
    /// `("use.reduction.buffer", "false")`.
    pub connector_props: Vec<(String, String)>,
    /// Give up after this long.
    pub timeout: Duration,
}

impl JdbcSinkOptions {
    /// Options with the defaults: the script's batch size, key from the record key, no
    /// expected row count, 15 minutes.
    pub fn new(bootstrap: &str, topic: &str, pg_url: &str, table: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_owned(),
            topic: topic.to_owned(),
            pg_url: pg_url.to_owned(),
            table: table.to_owned(),
            expect: None,
            batch_size: None,
            pk_mode: PrimaryKeyMode::RecordKey,
            pk_fields: None,
            tasks: None,
            connector_props: Vec::new(),
            timeout: Duration::from_secs(900),
        }
    }
}

/// The figures of one baseline run (the script's JSON line).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRun {
    /// Records in the topic.
    pub events: u64,
    /// Rows in the table at the end.
    pub rows: u64,
    /// Worker start to everything consumed (and the expected rows present).
    pub seconds: f64,
    /// Worker start to the connector's task RUNNING: the JVM start the comparison may
    /// exclude.
    pub startup_seconds: f64,
    /// `seconds - startup_seconds`.
    pub load_seconds: f64,
    /// Worker start to the first row in the table; `None` when it was not empty before.
    pub first_row_seconds: Option<f64>,
    /// `events / seconds`.
    pub events_per_s: f64,
    /// `events / load_seconds`.
    pub load_events_per_s: f64,
    /// CPU time (user + system) of the Connect JVM, start to done.
    pub cpu_seconds: f64,
    /// CPU time of the Connect JVM after `startup_seconds` (the loading alone).
    pub load_cpu_seconds: f64,
    /// Peak resident memory (VmHWM) of the Connect JVM, KiB.
    pub peak_rss_kib: u64,
    /// The sink's `batch.size`.
    pub batch_size: u64,
}

/// Why a baseline run failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The script could not be started.
    #[error("could not run {script}: {source}")]
    Spawn {
        /// The script's path.
        script: String,
        /// The error.
        source: std::io::Error,
    },
    /// The script exited non-zero; `message` is its last error line.
    #[error("the Kafka Connect baseline failed ({status}): {message}")]
    Failed {
        /// The exit status.
        status: std::process::ExitStatus,
        /// The script's last `error:` line (or last line) on stderr.
        message: String,
    },
    /// The script's result line could not be read.
    #[error("unexpected output from the Kafka Connect baseline: {0}")]
    Output(String),
}

impl ConnectRun {
    /// Parses the script's JSON result line.
    pub fn from_json_line(line: &str) -> Result<Self, ConnectError> {
        let v: Value = serde_json::from_str(line.trim())
            .map_err(|e| ConnectError::Output(format!("{e}: {line}")))?;
        let f = |k: &str| {
            v.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| ConnectError::Output(format!("no number \"{k}\" in {line}")))
        };
        let u = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| ConnectError::Output(format!("no count \"{k}\" in {line}")))
        };
        Ok(Self {
            events: u("events")?,
            rows: u("rows")?,
            seconds: f("seconds")?,
            startup_seconds: f("startup_seconds")?,
            load_seconds: f("load_seconds")?,
            first_row_seconds: v.get("first_row_seconds").and_then(Value::as_f64),
            events_per_s: f("events_per_s")?,
            load_events_per_s: f("load_events_per_s")?,
            cpu_seconds: f("cpu_seconds")?,
            load_cpu_seconds: f("load_cpu_seconds")?,
            peak_rss_kib: u("peak_rss_kib")?,
            batch_size: u("batch_size")?,
        })
    }
}

/// The baseline script, `tests/bench/connect/jdbc-sink.sh`.
pub fn jdbc_sink_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/connect/jdbc-sink.sh")
}

/// Runs the Kafka Connect baseline on `opts.topic` into `opts.table` and returns its
/// figures. Blocks for the whole run (a Connect JVM start included; tens of seconds);
/// the script's progress lines are passed on to stderr.
pub fn run_jdbc_sink(opts: &JdbcSinkOptions) -> Result<ConnectRun, ConnectError> {
    let script = jdbc_sink_script();
    let mut cmd = Command::new(&script);
    cmd.arg("--bootstrap")
        .arg(&opts.bootstrap)
        .arg("--topic")
        .arg(&opts.topic)
        .arg("--table")
        .arg(&opts.table)
        .arg("--timeout")
        .arg(opts.timeout.as_secs().max(1).to_string())
        .arg("--pk-mode")
        .arg(match opts.pk_mode {
            PrimaryKeyMode::RecordKey => "record_key",
            PrimaryKeyMode::RecordValue => "record_value",
        })
        .env("SLUICE_CONNECT_PG_URL", &opts.pg_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = opts.expect {
        cmd.arg("--expect").arg(n.to_string());
    }
    if let Some(b) = opts.batch_size {
        cmd.arg("--batch-size").arg(b.to_string());
    }
    if let Some(t) = opts.tasks {
        cmd.arg("--tasks").arg(t.to_string());
    }
    if let Some(fields) = &opts.pk_fields {
        cmd.arg("--pk-fields").arg(fields);
    }
    for (k, v) in &opts.connector_props {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    let spawn_err = |source| ConnectError::Spawn {
        script: script.display().to_string(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // Pass stderr on as it comes, keeping the last error line for the failure message.
    let stderr = child.stderr.take().expect("piped stderr");
    let relay = std::thread::spawn(move || {
        let mut last_error = String::new();
        let mut last = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.contains("error:") {
                last_error.clone_from(&line);
            }
            last = line;
        }
        if last_error.is_empty() {
            last
        } else {
            last_error
        }
    });
    let output = child.wait_with_output().map_err(spawn_err)?;
    let message = relay.join().unwrap_or_default();
    if !output.status.success() {
        return Err(ConnectError::Failed {
            status: output.status,
            message,
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| ConnectError::Output("no result line".into()))?;
    ConnectRun::from_json_line(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORDERS: &[ConnectField<'static>] = &[
        ("order_id", ConnectType::Int64, false),
        ("amount", ConnectType::Float64, true),
        ("status", ConnectType::String, true),
        ("created_at", ConnectType::ZonedTimestamp, true),
        ("extra", ConnectType::Json, true),
    ];

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn value_envelope_has_the_schema_and_a_converted_payload() {
        let r = row(json!({
            "order_id": "42", "amount": "9.5", "status": 3,
            "created_at": "2026-01-02T03:04:05Z", "extra": {"a": [1]}, "ignored": true
        }));
        let v: Value = serde_json::from_str(&envelope_value(&r, ORDERS)).unwrap();
        assert_eq!(v["schema"]["type"], "struct");
        assert_eq!(v["schema"]["name"], VALUE_STRUCT);
        assert_eq!(
            v["schema"]["fields"][0],
            json!({"field": "order_id", "type": "int64", "optional": false})
        );
        assert_eq!(
            v["schema"]["fields"][3],
            json!({"field": "created_at", "type": "string", "optional": true,
                   "name": "io.debezium.time.ZonedTimestamp", "version": 1})
        );
        assert_eq!(
            v["payload"],
            json!({"order_id": 42, "amount": 9.5, "status": "3",
                   "created_at": "2026-01-02T03:04:05Z", "extra": "{\"a\":[1]}"})
        );
    }

    #[test]
    fn missing_and_null_columns_are_null_and_key_envelopes_hold_only_the_key() {
        let r = row(json!({"order_id": 7, "status": null}));
        let v: Value = serde_json::from_str(&envelope_value(&r, ORDERS)).unwrap();
        assert_eq!(v["payload"]["status"], Value::Null);
        assert_eq!(v["payload"]["amount"], Value::Null);
        let k: Value = serde_json::from_str(&envelope_key(
            &r,
            &[("order_id", ConnectType::Int64, false)],
        ))
        .unwrap();
        assert_eq!(k["schema"]["name"], KEY_STRUCT);
        assert_eq!(k["payload"], json!({"order_id": 7}));
    }

    #[test]
    fn result_lines_parse() {
        let line = r#"{"events":200000,"rows":50000,"seconds":30.5,"startup_seconds":9.1,"load_seconds":21.4,"first_row_seconds":null,"events_per_s":6557.4,"load_events_per_s":9345.8,"cpu_seconds":40.25,"load_cpu_seconds":30.5,"peak_rss_kib":612345,"batch_size":5000}"#;
        let run = ConnectRun::from_json_line(line).unwrap();
        assert_eq!(run.events, 200_000);
        assert_eq!(run.first_row_seconds, None);
        assert_eq!(run.batch_size, 5000);
        assert!((run.load_seconds - 21.4).abs() < 1e-9);
        assert!(ConnectRun::from_json_line("{\"events\":1}").is_err());
        assert!(ConnectRun::from_json_line("not json").is_err());
    }
}
