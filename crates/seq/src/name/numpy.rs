//! numpy's default `str()` of a 1-D float64 array (numpy 2, `legacy=False`): `array2string`
//! with precision 8, `floatmode='maxprec'`, a shared padding for all elements, scientific
//! notation when the magnitudes call for it, lines wrapped at 75 columns and arrays above 1000
//! elements summarised as their first and last three elements around `...`.

const PRECISION: usize = 8;
const LINE_WIDTH: usize = 75;
const THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;

/// `str(np.array(values))`.
pub fn numpy_str(values: &[f64]) -> String {
    let summarise = values.len() > THRESHOLD;
    let shown: Vec<f64> = if summarise {
        values[..EDGE_ITEMS]
            .iter()
            .chain(&values[values.len() - EDGE_ITEMS..])
            .copied()
            .collect()
    } else {
        values.to_vec()
    };
    let format = FloatFormat::new(&shown);
    let mut words: Vec<String> = shown.iter().map(|&x| format.format(x)).collect();
    if summarise {
        words.insert(EDGE_ITEMS, "...".to_owned());
    }
    wrap(&words)
}

/// numpy's `_formatArray` for one dimension: elements separated by a space, a line is broken
/// before an element that would pass the width, continuation lines start with a space.
fn wrap(words: &[String]) -> String {
    let hanging_indent = " ";
    let elem_width = LINE_WIDTH - 1; // room for the closing bracket
    let mut s = String::new();
    let mut line = hanging_indent.to_owned();
    for (i, word) in words.iter().enumerate() {
        let needs_wrap = line.len() + word.len() > elem_width && line.len() > hanging_indent.len();
        if needs_wrap {
            s.push_str(line.trim_end());
            s.push('\n');
            line = hanging_indent.to_owned();
        }
        line.push_str(word);
        if i + 1 < words.len() {
            line.push(' ');
        }
    }
    s.push_str(&line);
    format!("[{}]", &s[hanging_indent.len()..])
}

/// numpy's `FloatingFormat` in `maxprec` mode.
struct FloatFormat {
    exp_format: bool,
    /// Digits after the point (scientific mode: of the mantissa, all padded to this).
    precision: usize,
    pad_left: usize,
    pad_right: usize,
    exp_size: usize,
}

impl FloatFormat {
    fn new(values: &[f64]) -> FloatFormat {
        let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let non_zero: Vec<f64> = finite
            .iter()
            .map(|x| x.abs())
            .filter(|&x| x != 0.0)
            .collect();
        let mut exp_format = false;
        if !non_zero.is_empty() {
            let max = non_zero.iter().copied().fold(f64::MIN, f64::max);
            let min = non_zero.iter().copied().fold(f64::MAX, f64::min);
            exp_format = max >= 1e8 || min < 0.0001 || max / min > 1000.0;
        }
        let mut format = FloatFormat {
            exp_format,
            precision: PRECISION,
            pad_left: 0,
            pad_right: 0,
            exp_size: 0,
        };
        if finite.is_empty() {
            format.pad_left = 0;
            format.pad_right = 0;
        } else if exp_format {
            let parts: Vec<(String, String, String)> = finite
                .iter()
                .map(|&x| scientific_parts(x, PRECISION))
                .collect();
            format.exp_size = parts.iter().map(|(_, _, exp)| exp.len()).max().unwrap_or(0);
            format.precision = parts
                .iter()
                .map(|(_, frac, _)| frac.len())
                .max()
                .unwrap_or(0);
            format.pad_left = parts.iter().map(|(int, _, _)| int.len()).max().unwrap_or(0);
            // sign + 'e' + exponent digits + point + fraction
            format.pad_right = format.exp_size + 2 + format.precision;
        } else {
            let parts: Vec<(String, String)> = finite
                .iter()
                .map(|&x| positional_parts(x, PRECISION))
                .collect();
            format.pad_left = parts.iter().map(|(int, _)| int.len()).max().unwrap_or(0);
            format.pad_right = parts.iter().map(|(_, frac)| frac.len()).max().unwrap_or(0);
        }
        if finite.len() != values.len() {
            let neg_inf = values.iter().any(|x| x.is_infinite() && *x < 0.0);
            let offset = format.pad_right + 1;
            let inf_len = 3 + usize::from(neg_inf);
            format.pad_left = format
                .pad_left
                .max(3usize.saturating_sub(offset))
                .max(inf_len.saturating_sub(offset));
        }
        format
    }

    fn format(&self, x: f64) -> String {
        if !x.is_finite() {
            let text = if x.is_nan() {
                "nan"
            } else if x < 0.0 {
                "-inf"
            } else {
                "inf"
            };
            let width = self.pad_left + self.pad_right + 1;
            return format!("{text:>width$}");
        }
        if self.exp_format {
            let (int, frac, exp) = scientific_parts(x, self.precision);
            let (sign, digits) = exp.split_at(1);
            format!(
                "{int:>pad$}.{frac:0<precision$}e{sign}{digits:0>exp_digits$}",
                pad = self.pad_left,
                precision = self.precision,
                exp_digits = self.exp_size - 1,
            )
        } else {
            let (int, frac) = positional_parts(x, PRECISION);
            format!(
                "{int:>pad_left$}.{frac:<pad_right$}",
                pad_left = self.pad_left,
                pad_right = self.pad_right
            )
        }
    }
}

/// Integer and fraction digits of the shortest representation that round-trips, cut to
/// `precision` fraction digits with correct rounding (Dragon4 `unique` with a cutoff), trailing
/// zeros of the fraction removed.
fn positional_parts(x: f64, precision: usize) -> (String, String) {
    let shortest = format!("{x}");
    let text = match shortest.split_once('.') {
        Some((_, frac)) if frac.len() > precision => format!("{x:.precision$}"),
        _ => shortest,
    };
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    (int.to_owned(), frac.trim_end_matches('0').to_owned())
}

/// Mantissa integer digit (with sign), mantissa fraction digits (trailing zeros removed) and
/// the signed exponent with at least two digits (`-05`) of the shortest scientific
/// representation, cut to `precision` fraction digits.
fn scientific_parts(x: f64, precision: usize) -> (String, String, String) {
    let shortest = format!("{x:e}");
    let needs_cut = shortest
        .split_once('e')
        .and_then(|(m, _)| m.split_once('.'))
        .is_some_and(|(_, f)| f.len() > precision);
    let text = if needs_cut {
        format!("{x:.precision$e}")
    } else {
        shortest
    };
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // Dragon4 writes at least two exponent digits.
    let exp = match exp.strip_prefix('-') {
        Some(digits) => format!("-{digits:0>2}"),
        None => format!("+{exp:0>2}"),
    };
    (int.to_owned(), frac.trim_end_matches('0').to_owned(), exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_live_examples() {
        let cases: &[(&[f64], &str)] = &[
            (&[1.0, 0.0], "[1. 0.]"),
            (&[0.5, 0.25], "[0.5  0.25]"),
            (&[0.1, 0.2, 0.3], "[0.1 0.2 0.3]"),
            (&[1e-5, 1.0], "[1.e-05 1.e+00]"),
            (&[-1.5, 2.0], "[-1.5  2. ]"),
            (&[0.123456789, 1.0], "[0.12345679 1.        ]"),
            (&[-0.0, 0.0], "[-0.  0.]"),
            (&[], "[]"),
        ];
        for (values, expected) in cases {
            assert_eq!(numpy_str(values), *expected, "{values:?}");
        }
    }
}
