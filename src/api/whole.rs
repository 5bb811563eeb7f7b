//! Whole numbers in request bodies. JSON Schema's `integer` (what the
//! OpenAPI document promises) includes `3.0`; serde's integers refuse it.
//! These accept a JSON number with no fractional part that fits the target
//! type, and refuse everything else with serde's usual "invalid type"
//! message. Use with `#[serde(deserialize_with = "whole::i64")]` (and
//! `default` with the `opt_*` forms).

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

struct Whole<T>(std::marker::PhantomData<T>);

impl<'de, T> Visitor<'de> for Whole<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // Beyond ±2^63 the cast saturates, so the range test must come first.
        let exact = v.fract() == 0.0 && v.abs() < 9.2e18;
        if !exact {
            return Err(E::invalid_type(de::Unexpected::Float(v), &self));
        }
        self.visit_i64(v as i64)
    }
}

fn whole<'de, D: Deserializer<'de>, T: TryFrom<i64> + TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(Whole(std::marker::PhantomData))
}

pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    whole(d)
}

pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    whole(d)
}

pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            whole(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::u64")]
        id: u64,
        #[serde(default, deserialize_with = "super::opt_i64")]
        delta: Option<i64>,
    }

    fn parse(text: &str) -> Result<Body, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_pass_in_either_spelling() {
        let body = parse(r#"{"id": 7.0, "delta": -3.0}"#).unwrap();
        assert_eq!((body.id, body.delta), (7, Some(-3)));
        let body = parse(r#"{"id": 18446744073709551615}"#).unwrap();
        assert_eq!((body.id, body.delta), (u64::MAX, None));
        assert_eq!(parse(r#"{"id": 1, "delta": null}"#).unwrap().delta, None);
    }

    #[test]
    fn fractions_strings_and_out_of_range_numbers_are_refused() {
        for (text, why) in [
            (r#"{"id": 1.5}"#, "a fraction"),
            (r#"{"id": -1}"#, "a negative id"),
            (r#"{"id": -1.0}"#, "a negative id as a float"),
            (r#"{"id": "1"}"#, "a string"),
            (r#"{"id": 1e300}"#, "a float past every integer"),
            (r#"{"id": 1, "delta": 1e19}"#, "a float past i64"),
            (r#"{"id": 1, "delta": 0.5}"#, "a fractional delta"),
        ] {
            assert!(parse(text).is_err(), "{why}: {text} was accepted");
        }
    }
}
