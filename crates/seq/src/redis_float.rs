//! Redis `HINCRBYFLOAT`, bit for bit: the stored decimal string and the increment are parsed
//! to x87 80-bit `long double` (64-bit significand, correctly rounded), added with one more
//! rounding, and printed `%.17Lf` with trailing zeros removed. KATO's symbol affinities are
//! running sums kept this way, so `0.1 + 0.2` is stored as `0.3` and `1e-20` as `0`.
//!
//! The arithmetic is exact rational arithmetic on big integers with explicit rounding, so it
//! does not depend on the host having an extended-precision type.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Signed, Zero};

/// Bits of the x87 extended significand.
const SIGNIFICAND_BITS: u64 = 64;

/// `HINCRBYFLOAT`: the new stored string given the current one (`None` when the field does
/// not exist) and the increment as the client sends it (Python's `repr` digits of an f64).
pub fn hincrbyfloat(current: Option<&str>, increment: f64) -> String {
    let current = current.and_then(parse_decimal).unwrap_or_else(Exact::zero);
    let increment = parse_decimal(&format!("{increment}")).unwrap_or_else(Exact::zero);
    let sum = round_extended(&round_extended(&current).add(&round_extended(&increment)));
    format_17(&sum)
}

/// An exact binary rational `mantissa * 2^exp2 / 10^exp10`.
#[derive(Clone, Debug)]
struct Exact {
    mantissa: BigInt,
    exp2: i64,
    exp10: u32,
}

impl Exact {
    fn zero() -> Exact {
        Exact {
            mantissa: BigInt::zero(),
            exp2: 0,
            exp10: 0,
        }
    }

    /// Exact sum of two values without a decimal denominator (as `round_extended` returns).
    fn add(&self, other: &Exact) -> Exact {
        debug_assert!(self.exp10 == 0 && other.exp10 == 0);
        let exp2 = self.exp2.min(other.exp2);
        let a = &self.mantissa << (self.exp2 - exp2) as usize;
        let b = &other.mantissa << (other.exp2 - exp2) as usize;
        Exact {
            mantissa: a + b,
            exp2,
            exp10: 0,
        }
    }
}

/// A plain decimal (`-12.5`, `0.00001`, `3`) as an exact rational.
fn parse_decimal(text: &str) -> Option<Exact> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let all: String = format!("{int}{frac}");
    let magnitude: BigInt = all.parse::<BigUint>().ok()?.into();
    let mantissa = if negative { -magnitude } else { magnitude };
    Some(Exact {
        mantissa,
        exp2: 0,
        exp10: frac.len() as u32,
    })
}

/// Rounds to the nearest value with a 64-bit significand, ties to even; the result has no
/// decimal denominator.
fn round_extended(value: &Exact) -> Exact {
    if value.mantissa.is_zero() {
        return Exact::zero();
    }
    let negative = value.mantissa.sign() == Sign::Minus;
    let numerator =
        value.mantissa.abs().to_biguint().unwrap_or_default() << value.exp2.max(0) as usize;
    let denominator = BigUint::from(10u32).pow(value.exp10) << (-value.exp2).max(0) as usize;
    // Find shift s with 2^63 <= numerator * 2^s / denominator < 2^64.
    let mut shift = SIGNIFICAND_BITS as i64 - (numerator.bits() as i64 - denominator.bits() as i64);
    loop {
        let (n, d) = scaled(&numerator, &denominator, shift);
        let q = &n / &d;
        if q.bits() > SIGNIFICAND_BITS {
            shift -= 1;
        } else if q.bits() < SIGNIFICAND_BITS {
            shift += 1;
        } else {
            let (q, r) = n.div_rem(&d);
            let twice = r << 1usize;
            let round_up = twice > d || (twice == d && q.is_odd());
            let mut m = if round_up { q + BigUint::one() } else { q };
            let mut exp2 = -shift;
            if m.bits() > SIGNIFICAND_BITS {
                m >>= 1usize;
                exp2 += 1;
            }
            let m: BigInt = m.into();
            return Exact {
                mantissa: if negative { -m } else { m },
                exp2,
                exp10: 0,
            };
        }
    }
}

fn scaled(numerator: &BigUint, denominator: &BigUint, shift: i64) -> (BigUint, BigUint) {
    if shift >= 0 {
        (numerator << shift as usize, denominator.clone())
    } else {
        (numerator.clone(), denominator << (-shift) as usize)
    }
}

/// `%.17Lf` (correctly rounded, ties to even) with trailing zeros and a bare point removed,
/// and `-0` printed as `0`, as Redis's `ld2string(LD_STR_HUMAN)` does.
fn format_17(value: &Exact) -> String {
    let negative = value.mantissa.sign() == Sign::Minus;
    let magnitude = value.mantissa.abs().to_biguint().unwrap_or_default();
    let scaled = magnitude * BigUint::from(10u32).pow(17);
    let units = if value.exp2 >= 0 {
        scaled << value.exp2 as usize
    } else {
        let d = BigUint::one() << (-value.exp2) as usize;
        let (q, r) = scaled.div_rem(&d);
        let twice = r << 1usize;
        if twice > d || (twice == d && q.is_odd()) {
            q + BigUint::one()
        } else {
            q
        }
    };
    let digits = format!("{units:0>18}");
    let (int, frac) = digits.split_at(digits.len() - 17);
    let frac = frac.trim_end_matches('0');
    let mut out = String::new();
    if negative && !(units.is_zero()) {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings from glibc: `strtold` of both operands, a `long double` addition and
    /// `printf("%.17Lf")` with Redis's trimming (a 12-line C program).
    #[test]
    fn sums_print_as_redis_does() {
        assert_eq!(hincrbyfloat(None, 0.1), "0.1");
        assert_eq!(hincrbyfloat(Some("0.1"), 0.2), "0.3");
        assert_eq!(hincrbyfloat(None, 1e-20), "0");
        assert_eq!(hincrbyfloat(None, -0.5), "-0.5");
        assert_eq!(hincrbyfloat(Some("0.5"), -0.5), "0");
        assert_eq!(hincrbyfloat(Some("10"), 2.5), "12.5");
        assert_eq!(hincrbyfloat(None, 1.0 / 3.0), "0.3333333333333333");
        assert_eq!(
            hincrbyfloat(Some("0.33333333333333331"), 1.0 / 3.0),
            "0.66666666666666661"
        );
        assert_eq!(hincrbyfloat(None, 123456.789), "123456.78900000000000148");
    }
}
