//! Scalar constraints: numeric bounds and `multipleOf`, string lengths, `pattern` and `format`.

use serde_json::{Map, Value};

use super::location::Loc;
use super::types::NUMBER;
use super::walker::Walker;

/// A numeric bound: value and whether it is exclusive.
type Bound = (f64, bool);

impl Walker<'_> {
    pub(super) fn numbers(
        &mut self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        types: u8,
        loc: &Loc,
    ) {
        let Some(reader) = self.number_keywords(r, w, loc) else {
            return;
        };
        let writer = number_keywords(w);
        let describe = |bounds: &[(&str, Bound)]| -> String {
            if bounds.is_empty() {
                "no such bound".to_owned()
            } else {
                bounds
                    .iter()
                    .map(|(k, (v, _))| format!("`{k}: {v}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            }
        };
        for (k, (m, excl)) in &reader.lower {
            let implied = writer.lower.iter().any(|(_, (v, w_excl))| {
                if *excl {
                    *v > *m || (*w_excl && *v >= *m)
                } else {
                    *v >= *m
                }
            });
            if !implied {
                let message = format!(
                    "{} requires `{k}: {m}` but {} has {}",
                    self.r,
                    self.w,
                    describe(&writer.lower)
                );
                self.report_kw(loc, r, w, k, message);
            }
        }
        for (k, (m, excl)) in &reader.upper {
            let implied = writer.upper.iter().any(|(_, (v, w_excl))| {
                if *excl {
                    *v < *m || (*w_excl && *v <= *m)
                } else {
                    *v <= *m
                }
            });
            if !implied {
                let message = format!(
                    "{} requires `{k}: {m}` but {} has {}",
                    self.r,
                    self.w,
                    describe(&writer.upper)
                );
                self.report_kw(loc, r, w, k, message);
            }
        }
        if let Some(m) = reader.multiple_of {
            let integral =
                |x: f64| x.is_finite() && (x - x.round()).abs() <= 1e-9 * x.abs().max(1.0);
            let implied = writer.multiple_of.is_some_and(|v| integral(v / m))
                || (types & NUMBER == 0 && integral(1.0 / m));
            if !implied {
                let message = format!(
                    "{} requires `multipleOf: {m}` which {} does not guarantee",
                    self.r, self.w
                );
                self.report_kw(loc, r, w, "multipleOf", message);
            }
        }
    }

    /// The reader's numeric keywords; malformed ones are reported (unless identical in the
    /// writer, then they constrain both alike and are skipped).
    fn number_keywords(
        &mut self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        loc: &Loc,
    ) -> Option<NumberKeywords> {
        for k in [
            "minimum",
            "exclusiveMinimum",
            "maximum",
            "exclusiveMaximum",
            "multipleOf",
        ] {
            if let Some(v) = r.get(k)
                && !v.is_number()
                && w.get(k) != Some(v)
            {
                let message = format!("cannot prove compatible: `{k}` is malformed");
                self.report_kw(loc, r, w, k, message);
                return None;
            }
        }
        Some(number_keywords(r))
    }

    pub(super) fn strings(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, loc: &Loc) {
        let count = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_f64);
        if let Some(min) = count(r, "minLength")
            && min > 0.0
            && count(w, "minLength").is_none_or(|v| v < min)
        {
            let message = format!(
                "{} requires `minLength: {min}` but {} allows shorter strings",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "minLength", message);
        }
        if let Some(max) = count(r, "maxLength")
            && count(w, "maxLength").is_none_or(|v| v > max)
        {
            let message = format!(
                "{} requires `maxLength: {max}` but {} allows longer strings",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "maxLength", message);
        }
        for k in ["pattern", "format"] {
            if let Some(value) = r.get(k)
                && w.get(k) != Some(value)
            {
                let had = match w.get(k) {
                    Some(old) => format!("{} has `{k}: {old}`", self.w),
                    None => format!("{} has none", self.w),
                };
                let message = format!("{} requires `{k}: {value}` but {had}", self.r);
                self.report_kw(loc, r, w, k, message);
            }
        }
        for k in ["minLength", "maxLength"] {
            if let Some(v) = r.get(k)
                && v.as_f64().is_none()
                && w.get(k) != Some(v)
            {
                let message = format!("cannot prove compatible: `{k}` is malformed");
                self.report_kw(loc, r, w, k, message);
            }
        }
    }
}

struct NumberKeywords {
    lower: Vec<(&'static str, Bound)>,
    upper: Vec<(&'static str, Bound)>,
    multiple_of: Option<f64>,
}

fn number_keywords(schema: &Map<String, Value>) -> NumberKeywords {
    let get = |k: &str| schema.get(k).and_then(Value::as_f64);
    let bounds = |pairs: [(&'static str, bool); 2]| {
        pairs
            .into_iter()
            .filter_map(|(k, excl)| get(k).map(|v| (k, (v, excl))))
            .collect()
    };
    NumberKeywords {
        lower: bounds([("minimum", false), ("exclusiveMinimum", true)]),
        upper: bounds([("maximum", false), ("exclusiveMaximum", true)]),
        multiple_of: get("multipleOf").filter(|m| *m > 0.0),
    }
}
