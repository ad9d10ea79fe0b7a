//! Parsing a record or a table row with only the members a product reads (or, loading a
//! table, only its key field).
//!
//! A driving record is parsed once, and a looked-up row for every record that finds it;
//! the members a product never reads (a customer's e-mail address when the output takes its
//! name) cost as much to build as the rest. Members outside the projection are still checked
//! as JSON and skipped, so a value parses or fails as it would whole.

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value as Json};

/// `row` parsed: with only the top-level members named in `fields` when it is a JSON
/// object and `fields` is `Some`; whole otherwise (`fields` `None`, or a row that is not an
/// object, which the caller refuses as such). The error is a whole parse's when `row` is
/// not JSON.
pub(crate) fn parse<S: AsRef<str>>(
    row: &[u8],
    fields: Option<&[S]>,
) -> Result<Json, serde_json::Error> {
    let Some(fields) = fields else {
        return serde_json::from_slice(row);
    };
    let mut de = serde_json::Deserializer::from_slice(row);
    match Projection(fields).deserialize(&mut de).and_then(|m| {
        de.end()?;
        Ok(m)
    }) {
        Ok(members) => Ok(Json::Object(members)),
        Err(_) => serde_json::from_slice(row),
    }
}

/// Deserializes a JSON object into a map of the members it names.
struct Projection<'f, S>(&'f [S]);

impl<'de, S: AsRef<str>> DeserializeSeed<'de> for Projection<'_, S> {
    type Value = Map<String, Json>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, S: AsRef<str>> Visitor<'de> for Projection<'_, S> {
    type Value = Map<String, Json>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Room for every wanted member: growing the map as they come rehashes it.
        let mut members = Map::with_capacity(self.0.len());
        while let Some(wanted) = map.next_key_seed(Wanted(self.0))? {
            match wanted {
                // A repeated member counts as its last occurrence, as in a whole parse.
                Some(i) => {
                    members.insert(self.0[i].as_ref().to_owned(), map.next_value()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(members)
    }
}

/// A member's name: its position in the projection, if it is one of it (compared without
/// allocating).
struct Wanted<'f, S>(&'f [S]);

impl<'de, S: AsRef<str>> DeserializeSeed<'de> for Wanted<'_, S> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<S: AsRef<str>> Visitor<'_> for Wanted<'_, S> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|f| f.as_ref() == name))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::parse as parse_result;

    fn parse(row: &[u8], fields: Option<&[String]>) -> Option<serde_json::Value> {
        parse_result(row, fields).ok()
    }

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn keeps_only_the_named_members_and_parses_them_whole() {
        let row = br#"{"id":"c-1","name":"Ann","address":{"city":"Oslo","zip":"0150"},"tags":[1,2],"email":"a@x"}"#;
        assert_eq!(
            parse(row, Some(&fields(&["address", "name", "missing"]))),
            Some(json!({"name": "Ann", "address": {"city": "Oslo", "zip": "0150"}}))
        );
        assert_eq!(parse(row, Some(&[])), Some(json!({})));
        assert_eq!(parse(row, None), Some(serde_json::from_slice(row).unwrap()));
    }

    #[test]
    fn a_repeated_member_counts_as_its_last_occurrence_as_in_a_whole_parse() {
        let row = br#"{"name":"first","x":1,"name":"last"}"#;
        let whole: serde_json::Value = serde_json::from_slice(row).unwrap();
        assert_eq!(whole["name"], "last");
        assert_eq!(
            parse(row, Some(&fields(&["name"]))),
            Some(json!({"name": "last"}))
        );
    }

    #[test]
    fn escaped_member_names_match() {
        let row = br#"{"na\u006de":"Ann","e\"q":2}"#;
        assert_eq!(
            parse(row, Some(&fields(&["name", "e\"q"]))),
            Some(json!({"name": "Ann", "e\"q": 2}))
        );
    }

    #[test]
    fn rows_that_are_not_objects_or_not_json_are_as_a_whole_parse_leaves_them() {
        let names = fields(&["name"]);
        assert_eq!(parse(b"[1,2]", Some(&names)), Some(json!([1, 2])));
        assert_eq!(parse(b"\"text\"", Some(&names)), Some(json!("text")));
        // Invalid JSON in a skipped member still fails the row, as a whole parse does.
        assert_eq!(parse(br#"{"name":"Ann","x":[1,}"#, Some(&names)), None);
        assert_eq!(parse(br#"{"name":"Ann"} trailing"#, Some(&names)), None);
        assert_eq!(parse(b"not json", None), None);
    }
}
