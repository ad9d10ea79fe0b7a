//! The client verbs.

pub mod admin;
pub mod apply;
pub mod decide;
pub mod delete;
pub mod demo;
pub mod get;
pub mod plan;
pub mod verify;

use sluice_schemas::Kind;

use crate::client::{ApiProblem, ClientError};

/// How a verb ended, mapped to the exit code by `main`.
#[derive(Debug)]
pub enum Failure {
    /// Bad command line: exit 2.
    Usage(String),
    /// The server refused something (or could not be reached): exit 1.
    Rejected(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Rejected(e.to_string())
    }
}

/// The URL path of a resource, or of a kind's collection when `name` is `None`.
pub fn resource_path(
    kind: Kind,
    team: Option<&str>,
    name: Option<&str>,
) -> Result<String, Failure> {
    let collection = match kind {
        Kind::Dataset => "/api/v1/datasets".to_owned(),
        Kind::TargetCluster => "/api/v1/targetclusters".to_owned(),
        Kind::DataProduct => match team {
            Some(team) => format!("/api/v1/products/{}", encode(team)),
            None if name.is_none() => "/api/v1/products".to_owned(),
            None => {
                return Err(Failure::Usage(
                    "products are addressed as TEAM/NAME or NAME --team TEAM".to_owned(),
                ));
            }
        },
    };
    Ok(match name {
        Some(name) => format!("{collection}/{}", encode(name)),
        None => collection,
    })
}

/// Splits `TEAM/NAME`; `--team` wins over nothing, and both given must agree.
pub fn split_product(name: &str, team: Option<&str>) -> Result<(Option<String>, String), Failure> {
    match name.split_once('/') {
        Some((t, n)) => {
            if team.is_some_and(|given| given != t) {
                return Err(Failure::Usage(format!(
                    "`{name}` names team {t} but --team says {}",
                    team.unwrap_or_default()
                )));
            }
            Ok((Some(t.to_owned()), n.to_owned()))
        }
        None => Ok((team.map(str::to_owned), name.to_owned())),
    }
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// One resource named on the command line: `KIND NAME [--team TEAM]` (products also
/// `TEAM/NAME`), resolved to its kind, team, name and URL path.
pub struct Target {
    /// The kind.
    pub kind: Kind,
    /// The team, for products.
    pub team: Option<String>,
    /// The name.
    pub name: String,
    /// The API path of the resource.
    pub path: String,
}

impl Target {
    /// Resolves the words of the command line.
    pub fn resolve(kind: &str, name: &str, team: Option<&str>) -> Result<Target, Failure> {
        let kind = parse_kind(kind)?;
        let (team, name) = match kind {
            Kind::DataProduct => split_product(name, team)?,
            _ => (team.map(str::to_owned), name.to_owned()),
        };
        let path = resource_path(kind, team.as_deref(), Some(&name))?;
        Ok(Target {
            kind,
            team,
            name,
            path,
        })
    }

    /// `dataproduct/TEAM/NAME` or `KIND/NAME`, as the verbs report it.
    pub fn label(&self) -> String {
        match (self.kind, &self.team) {
            (Kind::DataProduct, Some(team)) => format!("dataproduct/{team}/{}", self.name),
            _ => format!("{}/{}", self.kind.as_str().to_ascii_lowercase(), self.name),
        }
    }
}

/// Parses a kind as typed on the command line.
pub fn parse_kind(text: &str) -> Result<Kind, Failure> {
    text.parse::<Kind>()
        .map_err(|e| Failure::Usage(e.to_string()))
}

/// Renders an API problem for a document: `ORIGIN: detail` and one line per field.
pub fn describe_problem(origin: &str, problem: &ApiProblem) -> String {
    let mut text = format!("{origin}: {}", problem.detail);
    for (pointer, message) in &problem.errors {
        text.push_str(&format!("\n  {origin}: {pointer}: {message}"));
    }
    text
}
