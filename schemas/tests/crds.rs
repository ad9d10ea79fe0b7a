//! The CustomResourceDefinitions in `deploy/crds/` and in the Helm chart are the ones the
//! Rust types give: this fails when they drift (regenerate them with
//! `sluice crd --out deploy/crds` and `sluice crd --out deploy/helm/sluice/crds`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::json;
use sluice_schemas::crd;

#[test]
fn the_committed_crds_are_the_generated_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for dir in ["deploy/crds", "deploy/helm/sluice/crds"] {
        for definition in crd::definitions() {
            let path = root.join(dir).join(crd::file_name(&definition));
            let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; run `sluice crd --out {dir}`", path.display())
            });
            assert!(
                committed == crd::to_yaml(&definition).unwrap(),
                "{} is not what the types give; run `sluice crd --out {dir}`",
                path.display()
            );
        }
    }
}

#[test]
fn every_definition_has_status_printer_columns_and_a_short_name() {
    let kinds: Vec<(String, String, String)> = crd::definitions()
        .iter()
        .map(|d| {
            let version = &d.spec.versions[0];
            assert!(version.subresources.as_ref().unwrap().status.is_some());
            assert!(
                version
                    .additional_printer_columns
                    .as_ref()
                    .unwrap()
                    .iter()
                    .any(|c| c.name == "Age")
            );
            (
                d.spec.names.kind.clone(),
                d.spec.scope.clone(),
                d.spec.names.short_names.as_ref().unwrap()[0].clone(),
            )
        })
        .collect();
    let expected = [
        ("Dataset", "Cluster", "ds"),
        ("TargetCluster", "Cluster", "tc"),
        ("DataProduct", "Namespaced", "dp"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(kinds, expected);
}

#[test]
fn structural_rewrites_unions_nulls_and_constants() {
    // An enum with documented variants becomes a string enum.
    let documented = json!({"oneOf": [
        {"type": "string", "const": "Lookup", "description": "a"},
        {"type": "string", "const": "Window", "description": "b"}
    ]});
    assert_eq!(
        crd::structural(&documented),
        json!({"type": "string", "enum": ["Lookup", "Window"]})
    );
    // A string-or-object field is left to Sluice's validation.
    let either = json!({"description": "x", "anyOf": [{"type": "string"}, {"type": "object", "properties": {"expr": {"type": "string"}}}]});
    assert_eq!(
        crd::structural(&either),
        json!({"x-kubernetes-preserve-unknown-fields": true, "description": "x"})
    );
    // An optional value is nullable; `const`, `readOnly` and `additionalProperties: false` go.
    let optional =
        json!({"type": ["integer", "null"], "format": "uint64", "minimum": 0, "readOnly": true});
    assert_eq!(
        crd::structural(&optional),
        json!({"type": "integer", "nullable": true, "format": "int64", "minimum": 0})
    );
    let strict = json!({"type": "object", "additionalProperties": false, "properties": {"v": {"const": "x"}}});
    assert_eq!(
        crd::structural(&strict),
        json!({"type": "object", "properties": {"v": {"enum": ["x"], "x-kubernetes-preserve-unknown-fields": true}}})
    );
    // A free-form object keeps what it is given.
    assert_eq!(
        crd::structural(&json!({"type": "object", "additionalProperties": true})),
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
    );
    assert_eq!(
        crd::structural(&json!(true)),
        json!({"x-kubernetes-preserve-unknown-fields": true})
    );
}
