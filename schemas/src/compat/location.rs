//! Where the walk is: JSON pointers into the reader and writer schemas, the dotted field path,
//! and how a place is named in messages.

pub(super) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Where the walk is: pointers into each schema (if the place exists there) and the field.
#[derive(Clone)]
pub(super) struct Loc {
    pub(super) reader: Option<String>,
    pub(super) writer: Option<String>,
    pub(super) field: String,
}

impl Loc {
    pub(super) fn root() -> Self {
        Loc {
            reader: Some(String::new()),
            writer: Some(String::new()),
            field: String::new(),
        }
    }

    pub(super) fn child(&self, reader: Option<&str>, writer: Option<&str>, field: String) -> Loc {
        let join = |base: &Option<String>, step: Option<&str>| match (base, step) {
            (Some(b), Some(s)) => Some(format!("{b}{s}")),
            _ => None,
        };
        Loc {
            reader: join(&self.reader, reader),
            writer: join(&self.writer, writer),
            field,
        }
    }

    pub(super) fn field_child(&self, name: &str) -> String {
        if self.field.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.field)
        }
    }

    pub(super) fn items_field(&self) -> String {
        format!("{}[]", self.field)
    }

    pub(super) fn what(&self) -> String {
        if self.field.is_empty() {
            "the record".to_owned()
        } else {
            format!("field `{}`", self.field)
        }
    }

    pub(super) fn reader_at(&self, keyword: &str) -> Option<String> {
        self.reader
            .as_ref()
            .map(|p| format!("{p}/{}", escape(keyword)))
    }

    pub(super) fn writer_at(&self, keyword: &str) -> Option<String> {
        self.writer
            .as_ref()
            .map(|p| format!("{p}/{}", escape(keyword)))
    }
}
