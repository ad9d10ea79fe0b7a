//! Reading spec files: files, directories and stdin; `${VAR}` expansion; multi-document YAML.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_schemas::validate::parse_documents;

/// One document read from an input, and where it came from.
#[derive(Debug)]
pub struct InputDocument {
    /// The file (or `-`).
    pub file: String,
    /// Its 1-based position in the file.
    pub index: usize,
    /// The document.
    pub value: Value,
}

impl InputDocument {
    /// `FILE document N (Kind name)`, for messages.
    pub fn origin(&self) -> String {
        let kind = self
            .value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let meta = self.value.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let who = match meta.and_then(|m| m.get("team")).and_then(Value::as_str) {
            Some(team) if kind == "DataProduct" => format!("{team}/{name}"),
            _ => name.to_owned(),
        };
        format!("{} document {} ({kind} {who})", self.file, self.index)
    }
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// `${VAR}` names a variable that is not set.
    #[error("{file}:{line}: environment variable {name} is not set (used as ${{{name}}})")]
    UnsetVariable {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The variable.
        name: String,
    },
    /// `${` without a valid closing name.
    #[error(
        "{file}:{line}: malformed variable reference; write ${{NAME}} (or $$ for a dollar sign)"
    )]
    BadReference {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
    },
    /// The text does not parse.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
}

/// Reads every document of every path (`-` is stdin; directories contribute their
/// `*.yaml`, `*.yml` and `*.json` files in name order), expanding `${VAR}`.
pub fn read_all(
    paths: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<InputDocument>, InputError> {
    let mut documents = Vec::new();
    for path in paths {
        for file in expand_path(path)? {
            let (name, text) = if file == Path::new("-") {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(
                    |source| InputError::Read {
                        path: "-".into(),
                        source,
                    },
                )?;
                ("-".to_owned(), text)
            } else {
                let name = file.display().to_string();
                let bytes = std::fs::read(&file).map_err(|source| InputError::Read {
                    path: name.clone(),
                    source,
                })?;
                let text = String::from_utf8(bytes).map_err(|e| InputError::Parse {
                    file: name.clone(),
                    message: format!(
                        "not UTF-8 (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                })?;
                (name, text)
            };
            let expanded = expand_vars(&text, &name, env)?;
            let values = parse_documents(expanded.as_bytes()).map_err(|p| InputError::Parse {
                file: name.clone(),
                message: p.message,
            })?;
            for (i, value) in values.into_iter().enumerate() {
                documents.push(InputDocument {
                    file: name.clone(),
                    index: i + 1,
                    value,
                });
            }
        }
    }
    Ok(documents)
}

fn expand_path(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    if path == Path::new("-") || !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| InputError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Replaces `${NAME}` with the variable's value; `$$` is a literal `$`. An unset variable is
/// an error, never an empty string.
pub fn expand_vars(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InputError> {
    let mut out = String::with_capacity(text.len());
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = body.find('}').ok_or(InputError::BadReference {
                    file: file.to_owned(),
                    line: line_no + 1,
                })?;
                let name = &body[..end];
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    return Err(InputError::BadReference {
                        file: file.to_owned(),
                        line: line_no + 1,
                    });
                }
                let value = env(name).ok_or_else(|| InputError::UnsetVariable {
                    file: file.to_owned(),
                    line: line_no + 1,
                    name: name.to_owned(),
                })?;
                out.push_str(&value);
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "URL" => Some("postgres://x".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn variables_expand_and_unset_ones_fail() {
        assert_eq!(
            expand_vars("url: ${URL}\n", "f", &env).unwrap(),
            "url: postgres://x\n"
        );
        assert_eq!(
            expand_vars("a: $$5 $x ${EMPTY}", "f", &env).unwrap(),
            "a: $5 $x "
        );
        let err = expand_vars("a: 1\nb: ${NOPE}\n", "f.yaml", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml:2: environment variable NOPE is not set (used as ${NOPE})"
        );
        assert!(matches!(
            expand_vars("${a-b}", "f", &env),
            Err(InputError::BadReference { .. })
        ));
        assert!(matches!(
            expand_vars("${UNCLOSED", "f", &env),
            Err(InputError::BadReference { .. })
        ));
    }
}
