//! Catalog records (products, categories, brands) and the rules for their
//! fields: names, slugs, prices, image references. No I/O.
//!
//! Invariant: every value that reaches the store went through a parser here,
//! so a stored slug is always lowercase `a-z0-9-` with at least one letter
//! (so it can never be mistaken for a numeric id in a URL).

use super::ids::{BrandId, CategoryId, ProductId};
use super::money::Money;
use serde::{Deserialize, Serialize};

/// A product as stored in `products_by_id`. Stock is not here: it lives in
/// `stock_by_product` (see `inventory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub slug: String,
    pub description: String,
    /// Price in minor units of the shop currency.
    pub price: Money,
    pub category: CategoryId,
    pub brand: Option<BrandId>,
    /// `/media/...` path of an uploaded image, or an external http(s) URL.
    pub image: Option<String>,
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Number of ratings; maintained by reviews.
    pub rating_count: u32,
    /// Sum of all ratings (1-5 each); the average is `rating_sum / rating_count`.
    pub rating_sum: u64,
}

impl Product {
    /// The average rating as a decimal string with two places ("4.25"),
    /// computed in integers; `None` before the first rating.
    pub fn rating_average(&self) -> Option<String> {
        if self.rating_count == 0 {
            return None;
        }
        let count = u64::from(self.rating_count);
        // Hundredths, rounded half up.
        let hundredths = (self.rating_sum * 200 + count) / (2 * count);
        Some(format!("{}.{:02}", hundredths / 100, hundredths % 100))
    }

    /// Rating scaled for ordering without floats (average * 1000).
    pub fn rating_key(&self) -> u64 {
        if self.rating_count == 0 {
            return 0;
        }
        self.rating_sum * 1000 / u64::from(self.rating_count)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub id: CategoryId,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brand {
    pub id: BrandId,
    pub name: String,
    pub slug: String,
    /// `/media/...` path of an uploaded logo, or an external http(s) URL.
    pub logo: Option<String>,
    pub created_at: i64,
}

pub const NAME_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;
pub const URL_MAX: usize = 2_000;
/// Largest stock figure accepted from a client (keeps sums far from overflow).
pub const STOCK_MAX: i64 = 1_000_000_000;

/// A URL-safe identifier derived from a name: "Café Crème 2" -> "cafe-creme-2".
pub fn slugify(name: &str) -> String {
    let ascii = deunicode::deunicode(name).to_lowercase();
    let mut slug = String::with_capacity(ascii.len());
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug.truncate(100);
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() || !slug.chars().any(|c| c.is_ascii_lowercase()) {
        // All-digit slugs would read as ids in `/api/products/{id or slug}/`.
        slug.insert_str(0, "item-");
        if slug.ends_with('-') {
            slug.pop();
        }
    }
    slug
}

/// Checks a slug given by a client.
pub fn parse_slug(raw: &str) -> Result<String, String> {
    let slug = raw.trim();
    if slug.is_empty() {
        return Err("must not be empty".into());
    }
    if slug.len() > 100 {
        return Err("must be at most 100 characters".into());
    }
    let valid = slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid || slug.starts_with('-') || slug.ends_with('-') {
        return Err("may contain only lowercase letters, digits and inner hyphens".into());
    }
    if !slug.chars().any(|c| c.is_ascii_lowercase()) {
        return Err("must contain at least one letter".into());
    }
    Ok(slug.to_owned())
}

/// Checks an external image URL: absolute http or https, no spaces or controls.
pub fn parse_image_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || host.starts_with('@') {
        return Err("must name a host".into());
    }
    if url.len() > URL_MAX {
        return Err(format!("must be at most {URL_MAX} characters"));
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>')
    {
        return Err("must not contain spaces, quotes or angle brackets".into());
    }
    Ok(url.to_owned())
}

/// Checks a stock figure given by staff.
pub fn parse_stock(units: i64) -> Result<i64, String> {
    if units < 0 {
        return Err("must not be negative".into());
    }
    if units > STOCK_MAX {
        return Err(format!("must be at most {STOCK_MAX}"));
    }
    Ok(units)
}

/// The values of a new product, all validated.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub slug: String,
    pub description: String,
    pub price: Money,
    pub category: CategoryId,
    pub brand: Option<BrandId>,
    pub image: Option<String>,
    pub is_active: bool,
    pub stock: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_ascii_and_never_all_digits() {
        let cases = [
            ("Café Crème", "cafe-creme"),
            ("  Hello,  World!! ", "hello-world"),
            ("2024", "item-2024"),
            ("日本", "ri-ben"),
            ("", "item"),
        ];
        for (name, slug) in cases {
            assert_eq!(slugify(name), slug, "{name}");
        }
    }

    #[test]
    fn bad_slugs_and_urls_are_refused() {
        for (slug, why) in [
            ("", "empty"),
            ("Upper", "upper case"),
            ("a b", "space"),
            ("-a", "leading hyphen"),
            ("123", "digits only"),
        ] {
            assert!(parse_slug(slug).is_err(), "{why}");
        }
        for (url, why) in [
            ("ftp://x/y.png", "scheme"),
            ("javascript:alert(1)", "script"),
            ("https://", "no host"),
            ("https://a b/c", "space"),
        ] {
            assert!(parse_image_url(url).is_err(), "{why}");
        }
        assert!(parse_image_url("https://cdn.example.com/a.png").is_ok());
    }

    #[test]
    fn rating_average_is_a_rounded_decimal() {
        let mut p = Product {
            id: ProductId(1),
            name: "x".into(),
            slug: "x".into(),
            description: String::new(),
            price: Money::new(1, super::super::money::Currency::parse("USD").unwrap()),
            category: CategoryId(1),
            brand: None,
            image: None,
            is_active: true,
            created_at: 0,
            updated_at: 0,
            rating_count: 0,
            rating_sum: 0,
        };
        assert_eq!(p.rating_average(), None);
        p.rating_count = 3;
        p.rating_sum = 13;
        assert_eq!(p.rating_average().as_deref(), Some("4.33"));
    }
}
