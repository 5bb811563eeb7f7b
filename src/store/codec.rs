//! Value encoding: one format-version byte, then bincode 2 (serde, standard
//! config). The version byte lets a later release read old records and
//! rewrite them instead of misreading them.

use super::StoreError;
use serde::{de::DeserializeOwned, Serialize};

/// The version written by this release.
const FORMAT_VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())
        .map_err(|e| StoreError::Corrupt(format!("encode: {e}")))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, body)) => {
            let (value, _) = bincode::serde::decode_from_slice(body, bincode::config::standard())
                .map_err(|e| StoreError::Corrupt(format!("decode: {e}")))?;
            Ok(value)
        }
        Some((version, _)) => Err(StoreError::Corrupt(format!(
            "unknown record format version {version}"
        ))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Sample {
        id: u64,
        name: String,
        tags: Vec<String>,
        price: Option<i64>,
    }

    #[test]
    fn values_round_trip_behind_a_version_byte() {
        let sample = Sample {
            id: 7,
            name: "Mug".into(),
            tags: vec!["kitchen".into()],
            price: Some(1999),
        };
        let bytes = encode(&sample).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample);
    }

    #[test]
    fn unknown_versions_and_garbage_are_errors_not_panics() {
        assert!(decode::<Sample>(&[]).is_err());
        assert!(decode::<Sample>(&[9, 1, 2]).is_err());
        assert!(decode::<Sample>(&[FORMAT_VERSION, 0xff, 0xff, 0xff]).is_err());
    }
}
