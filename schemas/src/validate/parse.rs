//! Reading documents from bytes: YAML (one or many documents) or JSON.

use serde::Deserialize;
use serde_json::Value;

use super::Problem;

/// The largest input accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Parses YAML or JSON text into documents; empty documents (a trailing `---`) are skipped.
/// A problem's pointer is `""` and its message names the document (1-based) and position.
pub fn parse_documents(bytes: &[u8]) -> Result<Vec<Value>, Problem> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(Problem::new(
            "",
            format!(
                "input is {} bytes; at most {MAX_DOCUMENT_BYTES} are accepted",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Problem::new(
            "",
            format!(
                "input is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let mut documents = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| {
            let message = e.to_string();
            Problem::new(
                "",
                if message.contains("document") {
                    message
                } else {
                    format!("document {}: {message}", index + 1)
                },
            )
        })?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_document_yaml_and_json() {
        let docs = parse_documents(b"a: 1\n---\nb: 2\n---\n").unwrap();
        assert_eq!(
            docs,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
        let docs = parse_documents(br#"{"kind": "Dataset"}"#).unwrap();
        assert_eq!(docs[0]["kind"], "Dataset");
    }

    #[test]
    fn refuses_bad_bytes_bombs_and_giants() {
        assert!(
            parse_documents(b"a: \xff\xfe")
                .unwrap_err()
                .message
                .contains("not UTF-8")
        );
        let bomb = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n\
                    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
                    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
                    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
                    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
                    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
                    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
                    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n\
                    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        assert!(parse_documents(bomb.as_bytes()).is_err());
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_documents(deep.as_bytes()).is_err());
        let huge = vec![b'a'; MAX_DOCUMENT_BYTES + 1];
        assert!(
            parse_documents(&huge)
                .unwrap_err()
                .message
                .contains("at most")
        );
    }
}
