//! `sluice crd`: the CustomResourceDefinitions of Kubernetes mode, printed or written to a
//! directory (`deploy/crds/` and the Helm chart's `crds/` are written this way).

use std::path::Path;
use std::process::ExitCode;

use sluice_schemas::crd;

/// Prints every definition as one multi-document YAML stream, or writes one file per
/// definition into `out`.
pub fn run(out: Option<&Path>) -> ExitCode {
    match write(out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sluice crd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn write(out: Option<&Path>) -> Result<(), String> {
    let mut printed = String::new();
    for definition in crd::definitions() {
        let yaml = crd::to_yaml(&definition).map_err(|e| format!("cannot render: {e}"))?;
        match out {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let path = dir.join(crd::file_name(&definition));
                std::fs::write(&path, yaml)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                println!("wrote {}", path.display());
            }
            None => {
                printed.push_str("---\n");
                printed.push_str(&yaml);
            }
        }
    }
    print!("{printed}");
    Ok(())
}
