//! The three documents — `Dataset`, `TargetCluster`, `DataProduct` — and [`Document`], any
//! one of them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dataset::DatasetSpec;
use crate::meta::ObjectMeta;
use crate::product::DataProductSpec;
use crate::status::{DataProductStatus, DatasetStatus, TargetClusterStatus};
use crate::target_cluster::TargetClusterSpec;
use crate::{API_VERSION, Kind};

macro_rules! resource {
    ($(#[$doc:meta])* $name:ident, $spec:ty, $status:ty, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        #[schemars(title = $kind)]
        pub struct $name {
            /// Always `sluice.dev/v1alpha1`.
            #[schemars(extend("const" = API_VERSION))]
            pub api_version: String,
            #[doc = concat!("Always `", $kind, "`.")]
            #[schemars(extend("const" = $kind))]
            pub kind: String,
            /// Name, ownership and description.
            pub metadata: ObjectMeta,
            /// What the user asks for.
            pub spec: $spec,
            /// What the server reports; ignored on input.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(extend("readOnly" = true))]
            pub status: Option<$status>,
        }

        impl $name {
            /// A document of this kind with the given metadata and spec, and no status.
            pub fn new(metadata: ObjectMeta, spec: $spec) -> Self {
                $name {
                    api_version: API_VERSION.to_owned(),
                    kind: $kind.to_owned(),
                    metadata,
                    spec,
                    status: None,
                }
            }
        }
    };
}

resource!(
    /// An event stream in the catalog.
    Dataset, DatasetSpec, DatasetStatus, "Dataset"
);
resource!(
    /// A store the platform lets Sluice provision into.
    TargetCluster, TargetClusterSpec, TargetClusterStatus, "TargetCluster"
);
resource!(
    /// What a team asks for: sources, joins, filter, shape and target.
    DataProduct, DataProductSpec, DataProductStatus, "DataProduct"
);

/// Any Sluice document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(clippy::large_enum_variant)] // documents are few and short-lived; boxing buys nothing
#[serde(untagged)]
pub enum Document {
    /// A dataset.
    Dataset(Dataset),
    /// A target cluster.
    TargetCluster(TargetCluster),
    /// A data product.
    DataProduct(DataProduct),
}

impl Document {
    /// The document's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Document::Dataset(_) => Kind::Dataset,
            Document::TargetCluster(_) => Kind::TargetCluster,
            Document::DataProduct(_) => Kind::DataProduct,
        }
    }

    /// The document's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Document::Dataset(d) => &d.metadata,
            Document::TargetCluster(d) => &d.metadata,
            Document::DataProduct(d) => &d.metadata,
        }
    }

    /// The document's metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Document::Dataset(d) => &mut d.metadata,
            Document::TargetCluster(d) => &mut d.metadata,
            Document::DataProduct(d) => &mut d.metadata,
        }
    }

    /// The spec as JSON.
    pub fn spec_json(&self) -> serde_json::Value {
        let value = match self {
            Document::Dataset(d) => serde_json::to_value(&d.spec),
            Document::TargetCluster(d) => serde_json::to_value(&d.spec),
            Document::DataProduct(d) => serde_json::to_value(&d.spec),
        };
        value.unwrap_or(serde_json::Value::Null)
    }

    /// `TEAM/NAME` for products, `NAME` otherwise: how messages name the document.
    pub fn display_name(&self) -> String {
        let meta = self.metadata();
        match (self.kind(), &meta.team) {
            (Kind::DataProduct, Some(team)) => format!("{team}/{}", meta.name),
            _ => meta.name.clone(),
        }
    }
}
