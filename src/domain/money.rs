//! Money is integers (DESIGN.md invariant 5): amounts are minor units (cents)
//! of one ISO 4217 currency; JSON shows them as decimal strings ("19.99").
//! No float ever holds an amount.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 code, upper case, with its number of minor-unit digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The default shop currency.
    pub const USD: Currency = Currency(*b"USD");

    pub fn parse(code: &str) -> Result<Self, String> {
        let code = code.trim().to_ascii_uppercase();
        let bytes: [u8; 3] = code
            .as_bytes()
            .try_into()
            .map_err(|_| "must be a three-letter ISO 4217 code".to_string())?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err("must be a three-letter ISO 4217 code".into());
        }
        Ok(Self(bytes))
    }

    pub fn code(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (0 for JPY, 3 for KWD, 2 for most).
    pub fn exponent(&self) -> u32 {
        match self.code() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Parses a non-negative decimal string ("19.99", "20", "0.5") into
    /// minor units, refusing more decimals than the currency has.
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Self, String> {
        let text = text.trim();
        let exponent = currency.exponent() as usize;
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_only = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if text.starts_with('-') {
            return Err("must not be negative".into());
        }
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
            return Err(format!(
                "must be a decimal amount like \"19.99\", got \"{text}\""
            ));
        }
        if text.contains('.') && fraction.is_empty() {
            return Err(format!(
                "must be a decimal amount like \"19.99\", got \"{text}\""
            ));
        }
        if fraction.len() > exponent {
            return Err(format!(
                "{currency} allows at most {exponent} decimal places"
            ));
        }
        let scale = 10i64.pow(exponent as u32);
        let whole: i64 = whole.parse().map_err(|_| "is too large".to_string())?;
        let mut fraction_minor: i64 = 0;
        if !fraction.is_empty() {
            fraction_minor = format!("{fraction:0<exponent$}")
                .parse()
                .map_err(|_| "is not a number".to_string())?;
        }
        let minor = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(fraction_minor))
            .ok_or_else(|| "is too large".to_string())?;
        Ok(Self { minor, currency })
    }

    /// The decimal string shown in JSON: "19.99".
    pub fn to_decimal(&self) -> String {
        format_minor(self.minor, self.currency)
    }

    pub fn checked_mul(&self, quantity: i64) -> Option<Money> {
        self.minor
            .checked_mul(quantity)
            .map(|minor| Money { minor, ..*self })
    }

    pub fn checked_add(&self, other: Money) -> Option<Money> {
        if other.currency != self.currency {
            return None;
        }
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money { minor, ..*self })
    }
}

/// Formats minor units as a decimal string in the currency's precision.
pub fn format_minor(minor: i64, currency: Currency) -> String {
    let exponent = currency.exponent();
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u64.pow(exponent);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = exponent as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("usd").unwrap()
    }

    #[test]
    fn decimal_strings_become_minor_units_and_back() {
        let cases = [
            ("19.99", 1999),
            ("20", 2000),
            ("0.5", 50),
            ("0", 0),
            ("1234567.01", 123456701),
        ];
        for (text, minor) in cases {
            let money = Money::parse_decimal(text, usd()).unwrap();
            assert_eq!(money.minor, minor, "{text}");
        }
        assert_eq!(Money::new(1999, usd()).to_decimal(), "19.99");
        assert_eq!(Money::new(5, usd()).to_decimal(), "0.05");
        assert_eq!(Money::new(-250, usd()).to_decimal(), "-2.50");
        assert_eq!(
            Money::new(1500, Currency::parse("JPY").unwrap()).to_decimal(),
            "1500"
        );
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        let cases = [
            ("-1.00", "negative"),
            ("1.999", "too many decimals"),
            ("abc", "not a number"),
            ("1.", "dangling point"),
            (".5", "no whole part"),
            ("1e3", "exponent notation"),
            ("99999999999999999999", "overflow"),
        ];
        for (text, why) in cases {
            assert!(Money::parse_decimal(text, usd()).is_err(), "{why}: {text}");
        }
    }
}
