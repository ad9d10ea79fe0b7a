//! The closed sets of names the model is built on: resource kinds and target store types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A name that is not one of a closed set, e.g. `sluice get widgets`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; expected one of: {expected}")]
pub struct UnknownName {
    /// What was being named ("kind", "target type").
    pub what: &'static str,
    /// The name as given.
    pub given: String,
    /// The accepted names, comma separated.
    pub expected: &'static str,
}

/// The kinds of resource Sluice stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// An event stream in the catalog.
    Dataset,
    /// A store the platform lets Sluice provision into.
    TargetCluster,
    /// What a team asks for: sources, joins, shape and target.
    DataProduct,
}

impl Kind {
    /// Every kind, in the order a directory of specs is applied (dependencies first).
    pub const ALL: [Kind; 3] = [Kind::Dataset, Kind::TargetCluster, Kind::DataProduct];

    /// The `kind:` field value of a document of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dataset => "Dataset",
            Kind::TargetCluster => "TargetCluster",
            Kind::DataProduct => "DataProduct",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = UnknownName;

    /// Accepts the document kind and the short forms a CLI user types
    /// (`dataset`, `datasets`, `ds`, `target`, `product`, `dp`, ...), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "dataset" | "datasets" | "ds" => Ok(Kind::Dataset),
            "targetcluster" | "targetclusters" | "target" | "targets" | "tc" => {
                Ok(Kind::TargetCluster)
            }
            "dataproduct" | "dataproducts" | "product" | "products" | "dp" => Ok(Kind::DataProduct),
            _ => Err(UnknownName {
                what: "kind",
                given: s.to_owned(),
                expected: "dataset, targetcluster, dataproduct",
            }),
        }
    }
}

/// The store types Sluice can provision into: one provisioner and one sink per variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// PostgreSQL: a table per product version behind a stable view.
    Postgres,
    /// Elasticsearch or OpenSearch: an index per product version behind an alias.
    Elasticsearch,
    /// Redis: one hash or JSON string per key under a versioned prefix.
    Redis,
}

impl TargetType {
    /// Every target type.
    pub const ALL: [TargetType; 3] = [
        TargetType::Postgres,
        TargetType::Elasticsearch,
        TargetType::Redis,
    ];

    /// The spelling used in specs (`type: postgres`).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Postgres => "postgres",
            TargetType::Elasticsearch => "elasticsearch",
            TargetType::Redis => "redis",
        }
    }
}

impl fmt::Display for TargetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "target type",
                given: s.to_owned(),
                expected: "postgres, elasticsearch, redis",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_cli_spellings() {
        assert_eq!("products".parse::<Kind>().unwrap(), Kind::DataProduct);
        assert_eq!("DataSet".parse::<Kind>().unwrap(), Kind::Dataset);
        assert_eq!("tc".parse::<Kind>().unwrap(), Kind::TargetCluster);
        let err = "widgets".parse::<Kind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown kind `widgets`; expected one of: dataset, targetcluster, dataproduct"
        );
    }

    #[test]
    fn target_types_round_trip_through_their_spelling() {
        for t in TargetType::ALL {
            assert_eq!(t.as_str().parse::<TargetType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert!("mysql".parse::<TargetType>().is_err());
    }
}
