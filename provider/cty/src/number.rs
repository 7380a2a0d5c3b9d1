//! cty numbers: arbitrary-precision decimals as Terraform exchanges them.
//!
//! Terraform sends a number as a msgpack int when it is an integer fitting
//! i64, as a float64 when the float is exactly its value, and otherwise as its
//! exact decimal text (e.g. `0.1` written in HCL). To hand back exactly what
//! Terraform sent (plans must round-trip bit for bit), [`Number`] keeps one of
//! those three forms, normalised so each value has a single form.

use std::fmt;
use std::str::FromStr;

/// Longest canonical decimal text accepted; bounds work and memory on hostile
/// input such as `1e999999999`.
const MAX_DECIMAL_LEN: usize = 4096;

/// A cty number.
///
/// Equality is numeric where the forms agree on a decimal rendering:
/// a float equals a decimal whose text is the float's shortest round-trip
/// rendering (that is how a float comes back from JSON).
#[derive(Clone)]
pub struct Number(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// An integer in i64 range.
    Int(i64),
    /// A float that is not an integer in i64 range (may be ±inf, or NaN when
    /// built with `From<f64>`; the encoders reject NaN).
    Float(f64),
    /// A value that is neither an i64 nor exactly an f64.
    Decimal(Box<Decimal>),
}

/// `±digits × 10^scale`, canonical: `digits` has no leading or trailing
/// zeros and is not empty. Kept in this compact form (rather than as plain
/// text) so that `1e4000` costs bytes proportional to its input, not its
/// rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    scale: i64,
}

impl Decimal {
    /// Plain text without exponent, e.g. `-0.00125` (what cty writes).
    fn render(&self) -> String {
        let mut out = String::with_capacity(self.plain_len() + 3);
        if self.negative {
            out.push('-');
        }
        if self.scale >= 0 {
            out.push_str(&self.digits);
            out.extend(std::iter::repeat_n('0', self.scale as usize));
        } else {
            let frac = self.scale.unsigned_abs() as usize;
            if frac >= self.digits.len() {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', frac - self.digits.len()));
                out.push_str(&self.digits);
            } else {
                let (int_part, frac_part) = self.digits.split_at(self.digits.len() - frac);
                out.push_str(int_part);
                out.push('.');
                out.push_str(frac_part);
            }
        }
        out
    }

    /// Digits in the plain rendering (sign and point not counted).
    fn plain_len(&self) -> usize {
        let n = self.digits.len();
        let frac = self.scale.unsigned_abs() as usize;
        if self.scale >= 0 {
            n.saturating_add(frac)
        } else {
            n.max(frac.saturating_add(1))
        }
    }

    /// Scientific text that Rust's float parser accepts.
    fn scientific(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        format!("{sign}{}e{}", self.digits, self.scale)
    }
}

/// Why a text is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseNumberError {
    /// Not decimal number syntax.
    #[error("not a decimal number (expected digits with optional sign, fraction and exponent)")]
    Syntax,
    /// Too many digits or too large an exponent.
    #[error("too large or too precise: its plain decimal form exceeds {MAX_DECIMAL_LEN} digits")]
    TooLong,
}

impl Number {
    /// The value as i64 when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            Repr::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The value as u64 when it is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Int(i) => u64::try_from(*i).ok(),
            Repr::Float(f) => {
                if f.fract() == 0.0 && *f >= 0.0 && *f < 18446744073709551616.0 {
                    Some(*f as u64)
                } else {
                    None
                }
            }
            Repr::Decimal(d) if !d.negative && d.scale >= 0 && d.plain_len() <= 20 => {
                d.render().parse().ok()
            }
            Repr::Decimal(_) => None,
        }
    }

    /// The nearest f64 (may lose precision; huge values become ±inf).
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Repr::Int(i) => *i as f64,
            Repr::Float(f) => *f,
            Repr::Decimal(d) => d.scientific().parse().unwrap_or(f64::NAN),
        }
    }

    /// Whether the value is an integer (of any size).
    pub fn is_integer(&self) -> bool {
        match &self.0 {
            Repr::Int(_) => true,
            Repr::Float(f) => f.is_finite() && f.fract() == 0.0,
            Repr::Decimal(d) => d.scale >= 0,
        }
    }

    /// Whether the number is finite and not NaN (JSON can only carry these).
    pub fn is_finite(&self) -> bool {
        match &self.0 {
            Repr::Float(f) => f.is_finite(),
            _ => true,
        }
    }

    pub(crate) fn is_nan(&self) -> bool {
        matches!(self.0, Repr::Float(f) if f.is_nan())
    }

    /// Builds a number from a u64 (values above i64::MAX keep full precision).
    pub fn from_u64(u: u64) -> Number {
        match i64::try_from(u) {
            Ok(i) => Number(Repr::Int(i)),
            // Plain digits always parse; fall back to the nearest float anyway.
            Err(_) => u
                .to_string()
                .parse()
                .unwrap_or(Number(Repr::Float(u as f64))),
        }
    }

    /// How it travels in msgpack.
    pub(crate) fn wire(&self) -> Wire {
        match &self.0 {
            Repr::Int(i) => Wire::Int(*i),
            Repr::Float(f) => Wire::Float(*f),
            Repr::Decimal(d) => Wire::Text(d.render()),
        }
    }
}

/// The msgpack form of a number.
pub(crate) enum Wire {
    Int(i64),
    Float(f64),
    Text(String),
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number(Repr::Int(i))
    }
}

impl From<i32> for Number {
    fn from(i: i32) -> Number {
        Number(Repr::Int(i.into()))
    }
}

impl From<u32> for Number {
    fn from(i: u32) -> Number {
        Number(Repr::Int(i.into()))
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Number {
        Number::from_u64(u)
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Number {
        // -2^63 is exact in f64; 2^63 is the first value out of range.
        if f.fract() == 0.0 && (-9223372036854775808.0..9223372036854775808.0).contains(&f) {
            Number(Repr::Int(f as i64))
        } else {
            Number(Repr::Float(f))
        }
    }
}

impl FromStr for Number {
    type Err = ParseNumberError;

    /// Parses decimal text (`-12`, `0.1`, `1.5e300`, `+7`), keeping it exact.
    fn from_str(s: &str) -> Result<Number, ParseNumberError> {
        Ok(match parse_decimal(s)? {
            None => Number(Repr::Int(0)),
            Some(d) => from_decimal(d),
        })
    }
}

/// Chooses the form for a canonical decimal.
fn from_decimal(d: Decimal) -> Number {
    if d.scale >= 0
        && d.plain_len() <= 19
        && let Ok(i) = d.render().parse::<i64>()
    {
        return Number(Repr::Int(i));
    }
    if let Ok(f) = d.scientific().parse::<f64>()
        && f.is_finite()
        && exact_decimal(f) == d.render()
    {
        return Number(Repr::Float(f));
    }
    Number(Repr::Decimal(Box::new(d)))
}

/// The exact decimal expansion of a finite f64, canonical (plain, trimmed).
fn exact_decimal(f: f64) -> String {
    // 1074 fractional digits reach the smallest subnormal exactly, and Rust's
    // fixed-precision formatting is exact, so this is the precise value.
    let mut s = format!("{f:.1074}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}

/// Validates decimal syntax; `None` means zero.
fn parse_decimal(s: &str) -> Result<Option<Decimal>, ParseNumberError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut digits = String::new();
    let mut frac_len: i64 = 0;
    let mut seen_digit = false;
    let mut seen_point = false;
    while i < bytes.len() {
        match bytes[i] {
            b @ b'0'..=b'9' => {
                seen_digit = true;
                // Leading zeros carry no information.
                if !(digits.is_empty() && b == b'0') {
                    digits.push(b as char);
                }
                if seen_point {
                    frac_len += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if !seen_digit {
        return Err(ParseNumberError::Syntax);
    }
    let mut exp: i64 = 0;
    if i < bytes.len() {
        if bytes[i] != b'e' && bytes[i] != b'E' {
            return Err(ParseNumberError::Syntax);
        }
        i += 1;
        let exp_neg = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            // Saturate: anything this large is rejected below anyway.
            exp = exp
                .saturating_mul(10)
                .saturating_add(i64::from(bytes[i] - b'0'));
            i += 1;
        }
        if i == start || i != bytes.len() {
            return Err(ParseNumberError::Syntax);
        }
        if exp_neg {
            exp = -exp;
        }
    }
    // Value = digits × 10^(exp - frac_len); move trailing zeros into the scale.
    let mut scale = exp.saturating_sub(frac_len);
    while digits.ends_with('0') {
        digits.pop();
        scale = scale.saturating_add(1);
    }
    if digits.is_empty() {
        return Ok(None);
    }
    let d = Decimal {
        negative,
        digits,
        scale,
    };
    if d.plain_len() > MAX_DECIMAL_LEN {
        return Err(ParseNumberError::TooLong);
    }
    Ok(Some(d))
}

/// Canonical text: plain decimal; floats use their shortest round-trip form;
/// infinities render as `inf` / `-inf`.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(i) => write!(f, "{i}"),
            Repr::Float(x) => write!(f, "{x}"),
            Repr::Decimal(d) => f.write_str(&d.render()),
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(i) => write!(f, "Number({i})"),
            Repr::Float(x) => write!(f, "Number({x:?}f64)"),
            Repr::Decimal(d) => write!(f, "Number({:?})", d.scientific()),
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        match (&self.0, &other.0) {
            (Repr::Int(a), Repr::Int(b)) => a == b,
            (Repr::Float(a), Repr::Float(b)) => a == b,
            (Repr::Decimal(a), Repr::Decimal(b)) => a == b,
            // Construction normalises integers in i64 range to Int, so Int
            // never equals another form.
            (Repr::Int(_), _) | (_, Repr::Int(_)) => false,
            (Repr::Float(x), Repr::Decimal(d)) | (Repr::Decimal(d), Repr::Float(x)) => {
                x.is_finite() && x.to_string() == d.render()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        s.parse().unwrap()
    }

    #[test]
    fn normalises_forms() {
        assert!(matches!(n("42").0, Repr::Int(42)));
        assert!(matches!(n("-0").0, Repr::Int(0)));
        assert!(matches!(n("4.2e1").0, Repr::Int(42)));
        assert!(matches!(n("0042.000").0, Repr::Int(42)));
        assert!(matches!(n("0.5").0, Repr::Float(f) if f == 0.5));
        assert!(matches!(n("0.1").0, Repr::Decimal(ref d) if d.render() == "0.1"));
        assert!(
            matches!(n("9223372036854775808").0, Repr::Float(_)),
            "2^63 is exact in f64"
        );
        assert!(matches!(n("9223372036854775809").0, Repr::Decimal(_)));
        assert!(matches!(Number::from(3.0).0, Repr::Int(3)));
        assert!(matches!(Number::from(-0.0).0, Repr::Int(0)));
        assert!(matches!(Number::from(1.5).0, Repr::Float(_)));
        assert!(
            matches!(Number::from(u64::MAX).0, Repr::Decimal(ref d) if d.render() == "18446744073709551615")
        );
    }

    #[test]
    fn huge_exponents_stay_compact() {
        let big = n("1e4000");
        assert!(matches!(&big.0, Repr::Decimal(d) if d.digits == "1" && d.scale == 4000));
        assert_eq!(big.to_string().len(), 4001);
        assert!(big.is_integer());
        assert_eq!(big.as_f64(), f64::INFINITY);
        let tiny = n("-25e-4000");
        assert!(
            matches!(&tiny.0, Repr::Decimal(d) if d.negative && d.digits == "25" && d.scale == -4000)
        );
        assert!(tiny.to_string().starts_with("-0.000"));
    }

    #[test]
    fn canonical_text() {
        assert_eq!(n("1.50").to_string(), "1.5");
        assert_eq!(n("-1.25e-3").to_string(), "-0.00125");
        assert_eq!(n("12e3").to_string(), "12000");
        assert_eq!(n("+.5").to_string(), "0.5");
        assert_eq!(n("5.").to_string(), "5");
        assert_eq!(n("0.000").to_string(), "0");
        assert_eq!(
            n("123456789012345678901234567890.123").to_string(),
            "123456789012345678901234567890.123"
        );
        assert_eq!(Number::from(f64::INFINITY).to_string(), "inf");
    }

    #[test]
    fn rejects_bad_syntax_and_huge() {
        for bad in [
            "", "-", "abc", "1.2.3", "1e", "1e+", "0x10", "1 ", " 1", "e5", ".", "1_000", "NaN",
            "inf",
        ] {
            assert_eq!(
                bad.parse::<Number>().unwrap_err(),
                ParseNumberError::Syntax,
                "{bad:?}"
            );
        }
        assert_eq!(
            "1e999999999999999999999".parse::<Number>().unwrap_err(),
            ParseNumberError::TooLong
        );
        assert_eq!(
            "1e-5000".parse::<Number>().unwrap_err(),
            ParseNumberError::TooLong
        );
        // A long mantissa with zeros stripped stays fine.
        assert_eq!(n("1000e-3").as_i64(), Some(1));
    }

    #[test]
    fn accessors() {
        assert_eq!(Number::from(7).as_i64(), Some(7));
        assert_eq!(Number::from(7.5).as_i64(), None);
        assert_eq!(Number::from(7.5).as_f64(), 7.5);
        assert_eq!(n("0.1").as_f64(), 0.1);
        assert_eq!(Number::from(u64::MAX).as_u64(), Some(u64::MAX));
        assert!(n("1e30").is_integer());
        assert!(!n("1.5").is_integer());
    }

    #[test]
    fn semantic_equality() {
        assert_eq!(Number::from(1), Number::from(1.0));
        assert_eq!(
            Number::from(0.1),
            n("0.1"),
            "a float equals its shortest decimal"
        );
        assert_ne!(n("0.1"), n("0.10000000000000001"));
        assert_ne!(Number::from(1), Number::from(2));
        assert_eq!(Number::from(1e300), n(&1e300.to_string()));
    }
}
