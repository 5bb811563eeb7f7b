//! The JSON view of a product, as every product route returns it, and its
//! pre-rendered form kept by the index.
//!
//! The view lives beside the index rather than in `api` because the index
//! renders each document once, when the document is built (at start, after
//! a product write, or after its category or brand changed), and listing
//! pages and details are then assembled by copying those bytes.
//!
//! Invariant: `Rendered::write` produces exactly the bytes
//! `serde_json::to_writer(ProductView::new(product, stock, snapshot))`
//! would for the snapshot the document was built in. Stock is the one
//! field that changes without a new document (`publish_stock`), so it is
//! never part of the stored bytes: it is read and spliced in at each write.

use super::index::{Doc, Snapshot};
use crate::domain::catalog::Product;
use crate::domain::time::rfc3339;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryRef<'a> {
    pub id: u64,
    pub name: &'a str,
    pub slug: &'a str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandRef<'a> {
    pub id: u64,
    pub name: &'a str,
    pub slug: &'a str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView<'a> {
    pub id: u64,
    pub name: &'a str,
    pub slug: &'a str,
    pub description: &'a str,
    /// Decimal string in the shop currency, e.g. "19.99".
    pub price: String,
    /// ISO 4217 code.
    pub currency: &'a str,
    pub category: Option<CategoryRef<'a>>,
    pub brand: Option<BrandRef<'a>>,
    /// `/media/...` path or external URL.
    pub image: Option<&'a str>,
    /// Units on hand.
    pub stock: i64,
    pub in_stock: bool,
    pub is_active: bool,
    /// Average rating with two decimals, null before the first rating.
    pub rating_average: Option<String>,
    pub rating_count: u32,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

impl<'a> ProductView<'a> {
    pub fn new(product: &'a Product, stock: i64, snapshot: &'a Snapshot) -> Self {
        Self {
            id: product.id.0,
            name: &product.name,
            slug: &product.slug,
            description: &product.description,
            price: product.price.to_decimal(),
            currency: product.price.currency.code(),
            category: snapshot.category(product.category).map(|c| CategoryRef {
                id: c.id.0,
                name: &c.name,
                slug: &c.slug,
            }),
            brand: product
                .brand
                .and_then(|b| snapshot.brand(b))
                .map(|b| BrandRef {
                    id: b.id.0,
                    name: &b.name,
                    slug: &b.slug,
                }),
            image: product.image.as_deref(),
            stock,
            in_stock: stock > 0,
            is_active: product.is_active,
            rating_average: product.rating_average(),
            rating_count: product.rating_count,
            created_at: rfc3339(product.created_at),
            updated_at: rfc3339(product.updated_at),
        }
    }

    pub fn of_doc(doc: &'a Doc, snapshot: &'a Snapshot) -> Self {
        Self::new(&doc.product, doc.on_hand(), snapshot)
    }
}

/// What `ProductView` renders around the stock when it is zero; the two
/// stock-dependent fields are adjacent, so one cut takes both out.
const STOCK_FIELDS: &[u8] = b",\"stock\":0,\"in_stock\":false";
const STOCK_KEY: &[u8] = b",\"stock\":";

/// A product's view rendered once, without its stock.
#[derive(Debug)]
pub struct Rendered {
    /// The view's JSON with zero stock.
    json: Box<[u8]>,
    /// Where the stock number starts in `json`.
    stock_at: usize,
    /// Where what follows `"in_stock":false` starts in `json`.
    rest_at: usize,
}

impl Rendered {
    /// Renders `product` with the categories and brands of `snapshot`.
    /// `None` if the view's layout ever stopped putting the two stock fields
    /// side by side; readers then render the view whole.
    pub fn new(product: &Product, snapshot: &Snapshot) -> Option<Self> {
        let json = serde_json::to_vec(&ProductView::new(product, 0, snapshot)).ok()?;
        // Inside a JSON string every `"` is escaped, so `,"` only occurs
        // between members: the first match is the view's own stock field.
        let at = json
            .windows(STOCK_FIELDS.len())
            .position(|w| w == STOCK_FIELDS)?;
        Some(Self {
            stock_at: at + STOCK_KEY.len(),
            rest_at: at + STOCK_FIELDS.len(),
            json: json.into_boxed_slice(),
        })
    }

    /// Appends the view's JSON with `stock` units on hand.
    pub fn write(&self, stock: i64, out: &mut Vec<u8>) {
        let (head, tail) = (&self.json[..self.stock_at], &self.json[self.rest_at..]);
        out.extend_from_slice(head);
        out.extend_from_slice(itoa::Buffer::new().format(stock).as_bytes());
        out.extend_from_slice(if stock > 0 {
            b",\"in_stock\":true"
        } else {
            b",\"in_stock\":false"
        });
        out.extend_from_slice(tail);
    }

    /// Bytes of the rendered view without the stock, to size buffers.
    pub fn len(&self) -> usize {
        self.json.len()
    }

    pub fn is_empty(&self) -> bool {
        self.json.is_empty()
    }
}

/// Appends the JSON of `doc`'s view with its live stock; `snapshot` must be
/// the one `doc` was taken from.
pub fn write_doc(doc: &Doc, snapshot: &Snapshot, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match doc.rendered() {
        Some(rendered) => {
            rendered.write(doc.on_hand(), out);
            Ok(())
        }
        None => serde_json::to_writer(out, &ProductView::of_doc(doc, snapshot)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::generate;
    use crate::catalog::index::CatalogIndex;

    fn spliced(doc: &Doc, snapshot: &Snapshot) -> String {
        let mut out = Vec::new();
        write_doc(doc, snapshot, &mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    fn whole(doc: &Doc, snapshot: &Snapshot) -> String {
        serde_json::to_string(&ProductView::of_doc(doc, snapshot)).expect("serialise")
    }

    #[test]
    fn the_spliced_view_is_the_serialised_view_for_any_stock_and_after_renames() {
        let generate::GeneratedShop {
            _dir,
            store,
            products: ids,
            ..
        } = generate::generated_shop(40, 5);
        // Text that needs escaping, text that looks like the stock fields,
        // no brand, an image, ratings, an inactive product.
        let awkward = [
            "Quote \" backslash \\ tab \t newline \n bell \u{7} é ✓ 🎉",
            ",\"stock\":0,\"in_stock\":false",
            "\\\",\"stock\":0,\"in_stock\":false,\"is_active\":",
        ];
        for (i, &id) in ids.iter().enumerate().take(12) {
            store
                .update_product(id, |p| {
                    p.description = awkward[i % awkward.len()].to_owned();
                    if i % 2 == 0 {
                        p.name = format!("{} {}", awkward[i % awkward.len()], i);
                    }
                    if i % 3 == 0 {
                        p.brand = None;
                    }
                    if i % 4 == 0 {
                        p.image = Some("/media/products/1.png".into());
                    }
                    if i % 5 == 0 {
                        p.rating_count = 3;
                        p.rating_sum = 13;
                    }
                    p.is_active = i % 6 != 0;
                })
                .expect("update");
        }
        let index = CatalogIndex::build(&store).expect("index");
        index.refresh_products(&store, &ids[..12]).expect("refresh");
        let check = |index: &CatalogIndex| {
            let snapshot = index.snapshot();
            for (i, &id) in ids.iter().enumerate() {
                for stock in [0, 1, 7, -3, 123_456_789, i64::MAX, i64::MIN] {
                    index.publish_stock(id, stock);
                    let doc = snapshot.product(id).expect("doc");
                    assert!(doc.rendered().is_some(), "product {i} pre-rendered");
                    let (got, want) = (spliced(doc, &snapshot), whole(doc, &snapshot));
                    assert_eq!(got, want, "product {i}, stock {stock}");
                }
            }
        };
        check(&index);
        // Names embedded in the views follow renames.
        let before = index.snapshot();
        let sample = before.product(ids[20]).expect("doc");
        let category = sample.product.category;
        store
            .update_category(category, |c| c.name = "Renamed \"Kitchen\"".into())
            .expect("rename category");
        index
            .refresh_category(&store, category)
            .expect("refresh category");
        let brand = ids[20..]
            .iter()
            .find_map(|&id| before.product(id).and_then(|d| d.product.brand))
            .expect("a product with a brand");
        store
            .update_brand(brand, |b| b.name = "Renamed ✓ brand".into())
            .expect("rename brand");
        index.refresh_brand(&store, brand).expect("refresh brand");
        check(&index);
        let snapshot = index.snapshot();
        for doc in ids.iter().filter_map(|&id| snapshot.product(id)) {
            let json: serde_json::Value =
                serde_json::from_str(&spliced(doc, &snapshot)).expect("json");
            if doc.product.category == category {
                assert_eq!(json["category"]["name"], "Renamed \"Kitchen\"");
            }
            if doc.product.brand == Some(brand) {
                assert_eq!(json["brand"]["name"], "Renamed ✓ brand");
            }
        }
    }
}
