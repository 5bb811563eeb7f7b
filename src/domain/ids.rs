//! Typed ids. Each id is a `u64` that keys sled records (big-endian, so
//! scans come back in creation order) and names actors and hub rooms.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The id as a sled key part: big-endian so keys sort numerically.
            pub fn to_key(self) -> [u8; 8] {
                self.0.to_be_bytes()
            }

            /// Reads an id back from the first eight bytes of a key.
            pub fn from_key(bytes: &[u8]) -> Option<Self> {
                let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
                Some(Self(u64::from_be_bytes(head)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

typed_id!(
    /// A registered account.
    UserId
);
typed_id!(
    /// A login session: one refresh-token family and the access tokens minted from it.
    SessionId
);
typed_id!(
    /// A catalog product; also the key of its InventoryActor.
    ProductId
);
typed_id!(
    /// A catalog category.
    CategoryId
);
typed_id!(
    /// A brand.
    BrandId
);
typed_id!(
    /// A shopper's cart (anonymous or a user's); also the key of its CartActor.
    CartId
);
typed_id!(
    /// An order.
    OrderId
);
typed_id!(
    /// One payment attempt for an order.
    PaymentId
);
typed_id!(
    /// A product review.
    ReviewId
);
