//! The HTTP client of the client verbs: one-line errors, problem+json rendered per field.

use std::fmt;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot reach Sluice at {url}: {reason} (set SLUICE_URL or --url)")]
    Unreachable {
        /// The base URL tried.
        url: String,
        /// The transport error, in one line.
        reason: String,
    },
    /// The server answered with an error.
    #[error("{0}")]
    Api(ApiProblem),
}

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiProblem {
    /// HTTP status.
    pub status: StatusCode,
    /// The explanation.
    pub detail: String,
    /// Invalid fields: (JSON pointer without `#`, message).
    pub errors: Vec<(String, String)>,
}

impl fmt::Display for ApiProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.detail, self.status.as_u16())?;
        for (pointer, message) in &self.errors {
            write!(f, "\n  {pointer}: {message}")?;
        }
        Ok(())
    }
}

/// A client of one Sluice API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status (a success).
    pub status: reqwest::StatusCode,
    /// The outcome header of an apply (`created`, `updated`, `unchanged`).
    pub outcome: Option<String>,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) with an optional bearer token.
    pub fn new(base: &str, token: Option<String>) -> Self {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        }
    }

    /// Sends a GET-like request and returns the body as text (for non-JSON answers).
    pub async fn send_raw(&self, method: Method, path: &str) -> Result<String, ClientError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: one_line(&e),
        })?;
        if !response.status().is_success() {
            // Let the JSON path build the problem from the error body.
            return self
                .send(method, path, None)
                .await
                .map(|a| a.body.to_string());
        }
        response.text().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: one_line(&e),
        })
    }

    /// Sends a request with an optional JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: one_line(&e),
        })?;
        let status = response.status();
        let outcome = response
            .headers()
            .get("x-sluice-outcome")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                reason: one_line(&e),
            })?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() {
            return Ok(Answer {
                status,
                outcome,
                body,
            });
        }
        let detail = body
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| match &body {
                Value::String(s) if !s.is_empty() => s.clone(),
                _ => status.canonical_reason().unwrap_or("error").to_owned(),
            });
        let errors = body
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        let pointer = e.get("pointer").and_then(Value::as_str).unwrap_or_default();
                        (
                            pointer.trim_start_matches('#').to_owned(),
                            e.get("detail")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Err(ClientError::Api(ApiProblem {
            status,
            detail,
            errors,
        }))
    }
}

fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
