//! Validation of documents in two layers, each reporting every problem with its JSON
//! pointer: structural (against the published JSON Schema, see [`structure`]) and semantic
//! (names, references to the catalog, CEL expressions, types; see [`semantics`]).

mod dataset;
pub mod expr;
mod fields;
mod parse;
mod product;
mod structural;
mod target;

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use crate::output::OutputSchema;
use crate::{DatasetSpec, Document, ObjectMeta, TargetClusterSpec};

pub use parse::{MAX_DOCUMENT_BYTES, parse_documents};
pub use structural::structure;

/// One thing wrong with a document: where (a JSON pointer, `""` for the whole document) and
/// why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON pointer (RFC 6901) to the offending value, e.g. `/spec/sources/0/dataset`.
    pub pointer: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl Problem {
    /// A problem at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// A dataset as the catalog knows it: its spec and owner.
#[derive(Debug, Clone)]
pub struct CatalogDataset {
    /// The owning team.
    pub owner: Option<String>,
    /// The spec, with the current schema.
    pub spec: DatasetSpec,
}

/// What semantic validation may consult: the catalog entries a document refers to, today's
/// date and what this deployment supports. Built by the caller from the metadata store, so
/// validation itself stays pure.
#[derive(Debug, Clone)]
pub struct Context {
    datasets: HashMap<String, CatalogDataset>,
    clusters: HashMap<String, TargetClusterSpec>,
    today: NaiveDate,
    dedicated_allowed: bool,
}

impl Context {
    /// An empty catalog on `today`; dedicated targets are refused (standalone mode).
    pub fn new(today: NaiveDate) -> Self {
        Context {
            datasets: HashMap::new(),
            clusters: HashMap::new(),
            today,
            dedicated_allowed: false,
        }
    }

    /// Adds a dataset of the catalog.
    pub fn with_dataset(mut self, name: impl Into<String>, dataset: CatalogDataset) -> Self {
        self.datasets.insert(name.into(), dataset);
        self
    }

    /// Adds a registered target cluster.
    pub fn with_cluster(mut self, name: impl Into<String>, spec: TargetClusterSpec) -> Self {
        self.clusters.insert(name.into(), spec);
        self
    }

    /// Allows `target.dedicated` (Kubernetes mode).
    pub fn allow_dedicated(mut self, allowed: bool) -> Self {
        self.dedicated_allowed = allowed;
        self
    }

    /// A dataset by catalog name.
    pub fn dataset(&self, name: &str) -> Option<&CatalogDataset> {
        self.datasets.get(name)
    }

    /// A target cluster by name.
    pub fn cluster(&self, name: &str) -> Option<&TargetClusterSpec> {
        self.clusters.get(name)
    }
}

/// The catalog entries a document refers to, which the caller loads into a [`Context`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Dataset names.
    pub datasets: Vec<String>,
    /// Target cluster names.
    pub clusters: Vec<String>,
}

/// The catalog entries `document` refers to.
pub fn references(document: &Document) -> References {
    match document {
        Document::DataProduct(p) => References {
            datasets: p.spec.sources.iter().map(|s| s.dataset.clone()).collect(),
            clusters: p.spec.target.cluster.iter().cloned().collect(),
        },
        _ => References::default(),
    }
}

/// Checks `document` against the catalog; for a product, also derives its output schema.
pub fn semantics(document: &Document, ctx: &Context) -> Result<Option<OutputSchema>, Vec<Problem>> {
    let mut problems: Vec<Problem> = Vec::new();
    let output = match document {
        Document::Dataset(d) => {
            dataset::check(&d.metadata, &d.spec, &mut problems);
            None
        }
        Document::TargetCluster(t) => {
            target::check_cluster(&t.metadata, &t.spec, &mut problems);
            None
        }
        Document::DataProduct(p) => product::check(&p.metadata, &p.spec, ctx, &mut problems),
    };
    if problems.is_empty() {
        Ok(output)
    } else {
        let mut seen = std::collections::HashSet::new();
        problems.retain(|p| seen.insert((p.pointer.clone(), p.message.clone())));
        Err(problems)
    }
}

/// Both layers: structure, then semantics against `ctx`.
pub fn validate(
    value: &serde_json::Value,
    ctx: &Context,
) -> Result<(Document, Option<OutputSchema>), Vec<Problem>> {
    let document = structure(value)?;
    let output = semantics(&document, ctx)?;
    Ok((document, output))
}

/// Reports metadata fields that do not belong to a kind.
fn forbid_meta(meta: &ObjectMeta, field: &str, why: &str, problems: &mut Vec<Problem>) {
    let present = match field {
        "team" => meta.team.is_some(),
        "owner" => meta.owner.is_some(),
        _ => false,
    };
    if present {
        problems.push(Problem::new(format!("/metadata/{field}"), why));
    }
}

/// JSON-pointer escaping of one reference token (RFC 6901).
pub(crate) fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Shortens text quoted back to the user, so a huge bad value does not make a huge error.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}
