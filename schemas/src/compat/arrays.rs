//! Arrays: `items`, `minItems`/`maxItems` and `uniqueItems`.

use serde_json::{Map, Value};

use super::location::Loc;
use super::walker::Walker;

impl Walker<'_> {
    pub(super) fn arrays(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, loc: &Loc) {
        let count = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_f64);
        if let Some(min) = count(r, "minItems")
            && min > 0.0
            && count(w, "minItems").is_none_or(|v| v < min)
        {
            let message = format!(
                "{} requires `minItems: {min}` but {} allows fewer items",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "minItems", message);
        }
        if let Some(max) = count(r, "maxItems")
            && count(w, "maxItems").is_none_or(|v| v > max)
        {
            let message = format!(
                "{} requires `maxItems: {max}` but {} allows more items",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "maxItems", message);
        }
        if r.get("uniqueItems") == Some(&Value::Bool(true))
            && w.get("uniqueItems") != Some(&Value::Bool(true))
        {
            let message = format!(
                "{} requires `uniqueItems: true` but {} allows duplicates",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "uniqueItems", message);
        }
        match (r.get("items"), w.get("items")) {
            (Some(Value::Array(_)), _) | (_, Some(Value::Array(_))) => {
                if r.get("items") != w.get("items") {
                    let message = "cannot prove compatible: tuple `items` changed".to_owned();
                    self.report_kw(loc, r, w, "items", message);
                }
            }
            (reader, writer) => {
                let child = loc.child(
                    reader.map(|_| "/items"),
                    writer.map(|_| "/items"),
                    loc.items_field(),
                );
                let t = Value::Bool(true);
                self.walk(reader.unwrap_or(&t), writer.unwrap_or(&t), &child);
            }
        }
    }
}
