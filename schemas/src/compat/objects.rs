//! Objects: fields the writer writes, fields only the reader declares, undeclared fields and
//! `required`.

use serde_json::{Map, Value};

use super::keywords::{OPENING_KEYWORDS, is_trivially_true};
use super::location::{Loc, escape};
use super::walker::Walker;

impl Walker<'_> {
    pub(super) fn objects(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, loc: &Loc) {
        let empty = Map::new();
        let t = Value::Bool(true);
        let Some(r_props) = self.properties(r, w, loc) else {
            return;
        };
        let r_props = r_props.unwrap_or(&empty);
        let w_props = w
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let r_req = required(r);
        let w_req = required(w);
        let r_ap = r.get("additionalProperties");
        let w_ap = w.get("additionalProperties");

        // What the writer may write besides its declared fields, and why.
        let opening = OPENING_KEYWORDS.iter().find(|k| match w.get(**k) {
            None => false,
            Some(v) => !(**k == "unevaluatedProperties" && v == &Value::Bool(false)),
        });
        let extra: Option<(&Value, String)> = match (opening, w_ap) {
            (Some(k), _) => Some((&t, format!("it uses `{k}`"))),
            (None, None | Some(Value::Bool(false))) => None,
            (None, Some(ap)) => Some((ap, format!("`additionalProperties: {ap}`"))),
        };

        // Every field the writer writes.
        let mut written: Vec<&str> = w_props.keys().map(String::as_str).collect();
        for k in &w_req {
            if !w_props.contains_key(*k) {
                written.push(k);
            }
        }
        for name in &written {
            let (w_schema, w_step) = match w_props.get(*name) {
                Some(s) => (s, Some(format!("/properties/{}", escape(name)))),
                None => match w_ap {
                    Some(ap) => (ap, Some("/additionalProperties".to_owned())),
                    None => (&t, None),
                },
            };
            let field = loc.field_child(name);
            if let Some(r_schema) = r_props.get(*name) {
                let child = loc.child(
                    Some(format!("/properties/{}", escape(name)).as_str()),
                    w_step.as_deref(),
                    field,
                );
                self.walk(r_schema, w_schema, &child);
                continue;
            }
            match r_ap {
                None | Some(Value::Bool(true)) => {}
                Some(Value::Bool(false)) => {
                    let child = loc.child(None, w_step.as_deref(), field);
                    let message = format!(
                        "{} writes it but {} does not declare it and has `additionalProperties: false`",
                        self.w, self.r
                    );
                    let writer = child.writer.clone().or_else(|| loc.writer_at("required"));
                    self.report(&child, None, writer, message);
                }
                Some(ap) => {
                    let child = loc.child(Some("/additionalProperties"), w_step.as_deref(), field);
                    self.walk(ap, w_schema, &child);
                }
            }
        }

        // Fields only the reader declares: the writer may still write them if it is open.
        if let Some((x, why)) = &extra {
            for (name, r_schema) in r_props {
                if written.contains(&name.as_str()) {
                    continue;
                }
                let field = loc.field_child(name);
                let w_step = w_ap
                    .filter(|_| opening.is_none())
                    .map(|_| "/additionalProperties");
                let child = loc.child(
                    Some(format!("/properties/{}", escape(name)).as_str()),
                    w_step,
                    field,
                );
                if is_trivially_true(x) {
                    if !is_trivially_true(r_schema) {
                        let message = format!(
                            "{} declares it, but {} may write undeclared fields with any value ({why})",
                            self.r, self.w
                        );
                        self.report(&child, child.reader.clone(), child.writer.clone(), message);
                    }
                } else {
                    self.walk(r_schema, x, &child);
                }
            }
            // And undeclared ones the reader does not declare either.
            match r_ap {
                None | Some(Value::Bool(true)) => {}
                Some(Value::Bool(false)) => {
                    let message = format!(
                        "{} may write undeclared fields ({why}) but {} has `additionalProperties: false`",
                        self.w, self.r
                    );
                    self.report(
                        loc,
                        loc.reader_at("additionalProperties"),
                        loc.writer.clone(),
                        message,
                    );
                }
                Some(ap) => {
                    let w_step = w_ap
                        .filter(|_| opening.is_none())
                        .map(|_| "/additionalProperties");
                    let child =
                        loc.child(Some("/additionalProperties"), w_step, loc.field_child("*"));
                    self.walk(ap, x, &child);
                }
            }
        }

        for name in r_req {
            if w_req.contains(&name) {
                continue;
            }
            let r_path = if r_props.contains_key(name) {
                loc.reader_at("properties")
                    .map(|p| format!("{p}/{}", escape(name)))
            } else {
                loc.reader_at("required")
            };
            let (w_path, how) = if w_props.contains_key(name) {
                let p = loc
                    .writer_at("properties")
                    .map(|p| format!("{p}/{}", escape(name)));
                (p, format!("optional in {}", self.w))
            } else {
                (None, format!("not written by {}", self.w))
            };
            let child = Loc {
                reader: r_path.clone(),
                writer: w_path.clone(),
                field: loc.field_child(name),
            };
            let message = format!("required by {} but {how}", self.r);
            self.report(&child, r_path, w_path, message);
        }
    }

    /// The reader's `properties` map; `Some(None)` when absent, `None` (reported) when
    /// `properties` or `required` is malformed on either side.
    fn properties<'m>(
        &mut self,
        r: &'m Map<String, Value>,
        w: &Map<String, Value>,
        loc: &Loc,
    ) -> Option<Option<&'m Map<String, Value>>> {
        for k in ["properties", "required"] {
            let malformed = |m: &Map<String, Value>| match (k, m.get(k)) {
                ("properties", Some(v)) => !v.is_object(),
                ("required", Some(v)) => {
                    !v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                }
                _ => false,
            };
            if malformed(r) || malformed(w) {
                let message = format!("cannot prove compatible: `{k}` is malformed");
                self.report_kw(loc, r, w, k, message);
                return None;
            }
        }
        Some(r.get("properties").and_then(Value::as_object))
    }
}

fn required(schema: &Map<String, Value>) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
