//! US dollars as exact integers (micro-dollars), and the decimal strings the API uses for
//! them (`limit: "2000.00"`, `status.spent: "1234.5678"`). Money is never a float on the
//! counting path, so sums across sidecars are exact.

use std::fmt;

/// An amount of US dollars, in millionths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub u64);

/// Millionths in a dollar.
pub const MICROS: u64 = 1_000_000;

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(0);

    /// Parses a non-negative decimal with at most six decimals (`"2000"`, `"0.25"`).
    pub fn parse(text: &str) -> Option<Money> {
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() || frac.len() > 6 || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) || (text.contains('.') && frac.is_empty()) {
            return None;
        }
        let whole: u64 = whole.parse().ok()?;
        let frac: u64 = format!("{frac:0<6}").parse().ok()?;
        whole.checked_mul(MICROS)?.checked_add(frac).map(Money)
    }

    /// Dollars from a float (prices times tokens), rounded up to the next millionth so that
    /// a reservation never undercounts.
    pub fn from_dollars_ceil(dollars: f64) -> Money {
        if dollars.is_finite() && dollars > 0.0 {
            Money((dollars * MICROS as f64).ceil() as u64)
        } else {
            Money::ZERO
        }
    }

    /// As a float, for metrics.
    pub fn dollars(self) -> f64 {
        self.0 as f64 / MICROS as f64
    }

    /// `self - other`, or zero.
    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }

    /// `self + other`, capped.
    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Money {
    /// At least two decimals, at most six, no trailing zeros beyond the second.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frac = format!("{:06}", self.0 % MICROS);
        let trimmed = frac.trim_end_matches('0');
        let shown = if trimmed.len() < 2 {
            &frac[..2]
        } else {
            trimmed
        };
        write!(f, "{}.{shown}", self.0 / MICROS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly_and_print_with_two_to_six_places() {
        let cases = [
            ("2000.00", 2_000_000_000, "2000.00"),
            ("0.25", 250_000, "0.25"),
            ("3", 3_000_000, "3.00"),
            ("1234.5678", 1_234_567_800, "1234.5678"),
            ("0.000001", 1, "0.000001"),
        ];
        for (text, micros, shown) in cases {
            assert_eq!(Money::parse(text), Some(Money(micros)), "{text}");
            assert_eq!(Money(micros).to_string(), shown);
        }
        for bad in ["", "-1", "1.", ".5", "1.0000001", "1e3", "abc", "1,5"] {
            assert_eq!(Money::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Money::from_dollars_ceil(0.0000011), Money(2));
    }
}
