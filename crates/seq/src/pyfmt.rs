//! Python's text forms of values, where KATO's output depends on them: `repr(float)`,
//! `str(value)` of metadata values (`accumulate_metadata` stores `str(v)`), and the JSON-like
//! value type observations carry.

use std::fmt::Write;

/// A metadata value as JSON delivers it (objects keep their key order, as Python dicts do).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MetaValue {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<MetaValue>),
    Dict(Vec<(String, MetaValue)>),
}

/// Python's `repr(x)` for a float: the shortest digits that round-trip, positional between
/// 1e-4 and 1e16 (with at least `.0`), scientific otherwise (`1e-05`, `1.5e+16`).
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x < 0.0 {
            "-inf".to_owned()
        } else {
            "inf".to_owned()
        };
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let text = format!("{x}");
        if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Python's `str(value)`.
pub fn python_str(value: &MetaValue) -> String {
    match value {
        MetaValue::Str(s) => s.clone(),
        other => python_repr_value(other),
    }
}

/// Python's `repr(value)`.
pub fn python_repr_value(value: &MetaValue) -> String {
    let mut out = String::new();
    push_repr(&mut out, value);
    out
}

fn push_repr(out: &mut String, value: &MetaValue) {
    match value {
        MetaValue::Null => out.push_str("None"),
        MetaValue::Bool(true) => out.push_str("True"),
        MetaValue::Bool(false) => out.push_str("False"),
        MetaValue::Int(n) => {
            let _ = write!(out, "{n}");
        }
        MetaValue::Float(x) => out.push_str(&float_repr(*x)),
        MetaValue::Str(s) => crate::name::push_str_repr(out, s),
        MetaValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_repr(out, item);
            }
            out.push(']');
        }
        MetaValue::Dict(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                crate::name::push_str_repr(out, key);
                out.push_str(": ");
                push_repr(out, item);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        let cases = [
            (1.0, "1.0"),
            (45.67, "45.67"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e16, "1.5e+16"),
            (-0.0, "-0.0"),
            (123456789.125, "123456789.125"),
            (f64::INFINITY, "inf"),
        ];
        for (x, expected) in cases {
            assert_eq!(float_repr(x), expected, "{x:e}");
        }
    }

    #[test]
    fn values_print_like_python_str() {
        use MetaValue::*;
        let value = List(vec![
            Str("a".into()),
            Int(1),
            Float(2.5),
            Bool(true),
            Null,
            Dict(vec![("k".into(), Str("it's".into()))]),
        ]);
        assert_eq!(
            python_str(&value),
            r#"['a', 1, 2.5, True, None, {'k': "it's"}]"#
        );
        assert_eq!(python_str(&Str("plain".into())), "plain");
        assert_eq!(python_str(&Dict(vec![("k".into(), Int(1))])), "{'k': 1}");
    }
}
