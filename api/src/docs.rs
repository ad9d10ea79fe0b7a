//! Schema placeholders for the OpenAPI document: the documents' schemas come from the
//! published JSON Schemas of `sluice-schemas` (see [`crate::openapi`]), so these types only
//! name them.

use std::borrow::Cow;

use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{PartialSchema, ToSchema};

macro_rules! document_ref {
    ($(#[$doc:meta])* $name:ident, $schema:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                RefOr::Ref(utoipa::openapi::Ref::from_schema_name($schema))
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($schema)
            }
        }
    };
}

document_ref!(
    /// A `Dataset` document.
    DatasetDoc,
    "Dataset"
);
document_ref!(
    /// A `TargetCluster` document (the URL's password is write-only).
    TargetClusterDoc,
    "TargetCluster"
);
document_ref!(
    /// A `DataProduct` document.
    DataProductDoc,
    "DataProduct"
);
