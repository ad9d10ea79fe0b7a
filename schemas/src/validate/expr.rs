//! Static analysis of CEL expressions: parse them and find which source fields they read.
//!
//! The `cel` crate has no type checker, so Sluice checks what it can before a job runs: the
//! expression parses, every name it uses is a declared source (or a variable a macro such as
//! `exists` binds), and every field path it selects exists in that source's schema.

use cel::common::ast::{EntryExpr, Expr};
use cel::{IdedExpr, Program};

/// Deepest bracket nesting accepted; deeper expressions are refused before parsing, so a
/// hostile expression cannot exhaust the parser's stack.
const MAX_NESTING: usize = 48;

/// A field path an expression reads: a source alias and the selected fields below it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldRef {
    /// The root name (a source alias, if valid).
    pub root: String,
    /// The fields selected below the root, outermost first (`o.address.city` → address, city).
    pub path: Vec<String>,
}

impl FieldRef {
    /// The path as written, e.g. `o.address.city`.
    pub fn dotted(&self) -> String {
        std::iter::once(self.root.as_str())
            .chain(self.path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// What the outermost node of an expression is, as far as its type can be told without a
/// type checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A literal of this CEL type: `bool`, `int`, `uint`, `double`, `string`, `bytes`, `null`.
    Literal(&'static str),
    /// A list, map or message literal.
    Collection,
    /// Arithmetic (`+ - * / %`, unary minus): a number, string or list, never a boolean.
    Arithmetic,
    /// A comparison or logical operator: a boolean.
    Boolean,
    /// Anything else (a field, a function call, a conditional): not known statically.
    Unknown,
}

/// Functions expressions may call: CEL's standard library, its string extension and the
/// optional-value helpers. The stream job runtime provides every one of them.
pub const KNOWN_FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "timestamp",
    "duration",
    "type",
    "dyn",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "max",
    "min",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "lowerAscii",
    "upperAscii",
    "trim",
    "replace",
    "split",
    "join",
    "substring",
    "indexOf",
    "lastIndexOf",
    "charAt",
    "format",
    "quote",
    "reverse",
    "hasValue",
    "value",
    "orValue",
    "or",
    "optMap",
    "optFlatMap",
];

/// What an expression reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// Every maximal field path the expression reads, sorted and without duplicates.
    pub refs: Vec<FieldRef>,
    /// The expression is nothing but one field path (`o.amount`).
    pub plain_path: Option<FieldRef>,
    /// For an `a.x == b.y` comparison: the two sides, when both are field paths.
    pub equality: Option<(FieldRef, FieldRef)>,
    /// The outermost node.
    pub shape: Shape,
    /// Functions called that are not in [`KNOWN_FUNCTIONS`].
    pub unknown_functions: Vec<String>,
}

/// Parses `source` and reports what it reads, or why it does not parse.
pub fn analyze(source: &str) -> Result<Analysis, String> {
    if source.trim().is_empty() {
        return Err("expression is empty".to_owned());
    }
    if nesting(source) > MAX_NESTING {
        return Err(format!("expression nests deeper than {MAX_NESTING} levels"));
    }
    let program = Program::compile(source).map_err(|e| {
        let text = e.to_string();
        // The parser reports "ERROR: <input>:line:col: msg"; keep the position and message.
        text.lines()
            .next()
            .unwrap_or("does not parse")
            .trim_start_matches("ERROR: ")
            .replace("<input>:", "at ")
    })?;
    let root = program.expression();
    let mut refs = Vec::new();
    let mut functions = Vec::new();
    collect(root, &mut Vec::new(), &mut refs, &mut functions);
    functions.sort();
    functions.dedup();
    let unknown_functions = functions
        .into_iter()
        .filter(|f| !f.starts_with('_') && !f.starts_with('@') && !f.starts_with('!'))
        .filter(|f| !KNOWN_FUNCTIONS.contains(&f.as_str()))
        .collect();
    refs.sort();
    refs.dedup();
    let plain_path = field_ref(&root.expr);
    let equality = match &root.expr {
        Expr::Call(call) if call.func_name == "_==_" && call.args.len() == 2 => {
            match (field_ref(&call.args[0].expr), field_ref(&call.args[1].expr)) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            }
        }
        _ => None,
    };
    Ok(Analysis {
        refs,
        plain_path,
        equality,
        shape: shape(&root.expr),
        unknown_functions,
    })
}

fn shape(expr: &Expr) -> Shape {
    use cel::common::ast::LiteralValue;
    match expr {
        Expr::Literal(literal) => Shape::Literal(match literal {
            LiteralValue::Boolean(_) => "bool",
            LiteralValue::Bytes(_) => "bytes",
            LiteralValue::Double(_) => "double",
            LiteralValue::Int(_) => "int",
            LiteralValue::Null => "null",
            LiteralValue::String(_) => "string",
            LiteralValue::UInt(_) => "uint",
        }),
        Expr::List(_) | Expr::Map(_) | Expr::Struct(_) => Shape::Collection,
        Expr::Call(call) => match call.func_name.as_str() {
            "_+_" | "_-_" | "_*_" | "_/_" | "_%_" | "-_" => Shape::Arithmetic,
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" | "_&&_" | "_||_" | "!_" | "@in" => {
                Shape::Boolean
            }
            _ => Shape::Unknown,
        },
        _ => Shape::Unknown,
    }
}

fn nesting(source: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in source.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // Unary operators chain without brackets (`!!!!x`, `----1`), and recurse in the parser too.
    let unary_run = source
        .as_bytes()
        .split(|b| *b != b'!' && *b != b'-')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    max.max(unary_run)
}

/// The field path an expression spells, if it is one (`o.a.b`, not `o.a.b()` or `has(o.a)`).
fn field_ref(expr: &Expr) -> Option<FieldRef> {
    let mut path = Vec::new();
    let mut current = expr;
    loop {
        match current {
            Expr::Ident(name) => {
                path.reverse();
                return Some(FieldRef {
                    root: name.clone(),
                    path,
                });
            }
            Expr::Select(select) if !select.test => {
                path.push(select.field.clone());
                current = &select.operand.expr;
            }
            _ => return None,
        }
    }
}

fn collect(
    node: &IdedExpr,
    bound: &mut Vec<String>,
    out: &mut Vec<FieldRef>,
    functions: &mut Vec<String>,
) {
    if let Some(r) = field_ref(&node.expr)
        && !bound.contains(&r.root)
    {
        out.push(r);
        return;
    }
    match &node.expr {
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        Expr::Select(select) => collect(&select.operand, bound, out, functions),
        Expr::Call(call) => {
            functions.push(call.func_name.clone());
            if let Some(target) = &call.target {
                collect(target, bound, out, functions);
            }
            for arg in &call.args {
                collect(arg, bound, out, functions);
            }
        }
        Expr::List(list) => {
            for e in &list.elements {
                collect(e, bound, out, functions);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(e) = &entry.expr {
                    collect(&e.key, bound, out, functions);
                    collect(&e.value, bound, out, functions);
                }
            }
        }
        Expr::Struct(st) => {
            for entry in &st.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    collect(&f.value, bound, out, functions);
                }
            }
        }
        Expr::Comprehension(c) => {
            collect(&c.iter_range, bound, out, functions);
            collect(&c.accu_init, bound, out, functions);
            let mark = bound.len();
            bound.push(c.iter_var.clone());
            if let Some(v) = &c.iter_var2 {
                bound.push(v.clone());
            }
            bound.push(c.accu_var.clone());
            collect(&c.loop_cond, bound, out, functions);
            collect(&c.loop_step, bound, out, functions);
            collect(&c.result, bound, out, functions);
            bound.truncate(mark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dotted(source: &str) -> Vec<String> {
        analyze(source)
            .unwrap()
            .refs
            .iter()
            .map(FieldRef::dotted)
            .collect()
    }

    #[test]
    fn finds_field_paths_and_ignores_macro_variables() {
        assert_eq!(
            dotted(r#"o.status != "CANCELLED" && p.amount >= o.amount"#),
            ["o.amount", "o.status", "p.amount"]
        );
        assert_eq!(dotted("int(o.amount * 100.0)"), ["o.amount"]);
        assert_eq!(dotted("o.items.exists(i, i.qty > 2)"), ["o.items"]);
        assert_eq!(dotted("has(o.address.city)"), ["o.address"]);
        assert_eq!(
            dotted("c.name.startsWith(o.prefix)"),
            ["c.name", "o.prefix"]
        );
    }

    #[test]
    fn recognises_plain_paths_and_equalities() {
        let a = analyze("o.id").unwrap();
        assert_eq!(a.plain_path.unwrap().dotted(), "o.id");
        let a = analyze("o.customer_id == c.id").unwrap();
        let (l, r) = a.equality.unwrap();
        assert_eq!(
            (l.dotted(), r.dotted()),
            ("o.customer_id".into(), "c.id".into())
        );
        assert!(analyze("o.a + 1").unwrap().plain_path.is_none());
    }

    #[test]
    fn reports_syntax_errors_and_refuses_deep_nesting() {
        assert!(analyze("o.amount >").is_err());
        assert!(analyze("").is_err());
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(analyze(&deep).unwrap_err().contains("nests deeper"));
        assert!(
            analyze(&"!".repeat(10_000))
                .unwrap_err()
                .contains("nests deeper")
        );
    }
}
