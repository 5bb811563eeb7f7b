//! A generated catalog for the demo shop and the benchmark: realistic
//! category, brand and product names and prices, computed in code from a
//! seed (no downloads), so the same seed always gives the same shop.

use crate::domain::catalog::{slugify, NewProduct};
use crate::domain::money::{Currency, Money};
use crate::domain::{BrandId, CategoryId};
use crate::store::{Store, StoreError};

/// (category, base price in cents, product nouns).
const CATEGORIES: [(&str, i64, [&str; 6]); 10] = [
    (
        "Kitchen",
        1500,
        [
            "Chef's Knife",
            "Frying Pan",
            "Coffee Mug",
            "Cutting Board",
            "Teapot",
            "Whisk",
        ],
    ),
    (
        "Garden",
        2500,
        [
            "Spade",
            "Watering Can",
            "Pruning Shears",
            "Hose",
            "Planter",
            "Rake",
        ],
    ),
    (
        "Electronics",
        6000,
        [
            "Headphones",
            "Bluetooth Speaker",
            "USB Charger",
            "Keyboard",
            "Webcam",
            "Power Bank",
        ],
    ),
    (
        "Books",
        1200,
        [
            "Cookbook",
            "Travel Guide",
            "Novel",
            "Notebook",
            "Atlas",
            "Poetry Collection",
        ],
    ),
    (
        "Sports",
        3000,
        [
            "Yoga Mat",
            "Football",
            "Tennis Racket",
            "Water Bottle",
            "Dumbbell",
            "Jump Rope",
        ],
    ),
    (
        "Toys",
        1800,
        [
            "Puzzle",
            "Building Blocks",
            "Plush Bear",
            "Kite",
            "Board Game",
            "Toy Train",
        ],
    ),
    (
        "Clothing",
        2800,
        [
            "T-Shirt",
            "Hoodie",
            "Scarf",
            "Rain Jacket",
            "Socks",
            "Beanie",
        ],
    ),
    (
        "Beauty",
        1400,
        [
            "Face Cream",
            "Shampoo",
            "Lip Balm",
            "Hand Soap",
            "Perfume",
            "Hair Brush",
        ],
    ),
    (
        "Office",
        900,
        [
            "Desk Lamp",
            "Stapler",
            "Fountain Pen",
            "Planner",
            "Desk Organiser",
            "Sticky Notes",
        ],
    ),
    (
        "Pets",
        1600,
        [
            "Dog Bed",
            "Cat Toy",
            "Leash",
            "Food Bowl",
            "Scratching Post",
            "Pet Brush",
        ],
    ),
];

const BRANDS: [&str; 8] = [
    "Acmé",
    "Nordlicht",
    "Bellwether",
    "Kōbō",
    "Sunfield",
    "Ironbark",
    "Maison Café",
    "Lumen",
];

const ADJECTIVES: [&str; 16] = [
    "Classic",
    "Deluxe",
    "Compact",
    "Organic",
    "Vintage",
    "Premium",
    "Eco",
    "Smart",
    "Crème",
    "Rustic",
    "Ultra",
    "Handmade",
    "Nordic",
    "Travel",
    "Soft",
    "Heavy-Duty",
];

const COLOURS: [&str; 10] = [
    "Red",
    "Blue",
    "Forest Green",
    "Charcoal",
    "Ivory",
    "Sunset Orange",
    "Teal",
    "Plum",
    "Sand",
    "Crimson",
];

/// A tiny deterministic generator (SplitMix64), enough for demo data.
pub struct Seq(u64);

impl Seq {
    pub fn new(seed: u64) -> Self {
        Seq(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }
}

/// The generated categories and brands, created in the store.
pub struct Skeleton {
    pub categories: Vec<CategoryId>,
    pub brands: Vec<BrandId>,
}

/// Creates the ten categories and eight brands.
pub fn create_skeleton(store: &Store) -> Result<Skeleton, StoreError> {
    let mut categories = Vec::new();
    for (name, _, _) in CATEGORIES {
        let description = format!("Everything {} for home and away.", name.to_lowercase());
        // Reused when present, so an interrupted seed can simply run again.
        let id = match store.category_by_slug(&slugify(name))? {
            Some(existing) => existing.id,
            None => {
                store
                    .create_category(name.into(), slugify(name), Some(description))?
                    .id
            }
        };
        categories.push(id);
    }
    let mut brands = Vec::new();
    for name in BRANDS {
        let id = match store.brand_by_slug(&slugify(name))? {
            Some(existing) => existing.id,
            None => store.create_brand(name.into(), slugify(name), None)?.id,
        };
        brands.push(id);
    }
    Ok(Skeleton { categories, brands })
}

/// A store in a temporary directory holding the categories, the brands and
/// `count` generated products (seeded with `seed`), for unit tests.
#[cfg(test)]
pub(crate) struct GeneratedShop {
    /// Keeps the directory until the test ends.
    pub _dir: tempfile::TempDir,
    pub store: Store,
    pub skeleton: Skeleton,
    pub products: Vec<crate::domain::ProductId>,
}

#[cfg(test)]
pub(crate) fn generated_shop(count: u64, seed: u64) -> GeneratedShop {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let skeleton = create_skeleton(&store).expect("skeleton");
    let mut seq = Seq::new(seed);
    let products = (1..=count)
        .map(|n| {
            let (product, _) = store
                .create_product(product(n, &mut seq, &skeleton, Currency::USD))
                .expect("product");
            product.id
        })
        .collect();
    GeneratedShop {
        _dir: dir,
        store,
        skeleton,
        products,
    }
}

/// The `n`-th generated product (unique slug thanks to the number suffix).
pub fn product(n: u64, seq: &mut Seq, skeleton: &Skeleton, currency: Currency) -> NewProduct {
    let c = seq.below(CATEGORIES.len() as u64) as usize;
    let (category_name, base, nouns) = CATEGORIES[c];
    let noun = seq.pick(&nouns);
    let adjective = seq.pick(&ADJECTIVES);
    let colour = seq.pick(&COLOURS);
    let brand = (seq.below(5) != 0)
        .then(|| {
            skeleton
                .brands
                .get(seq.below(skeleton.brands.len() as u64) as usize)
                .copied()
        })
        .flatten();
    let name = format!("{adjective} {colour} {noun}");
    // Prices end in .99, .49 or .00 like a real shop's.
    let cents = [99, 49, 0][seq.below(3) as usize];
    let whole = (base / 100) / 2 + seq.below((base / 100 * 3) as u64) as i64;
    NewProduct {
        slug: format!("{}-{n}", slugify(&name)),
        description: format!(
            "A {} {} from our {} range, in {}. Built to last and easy to love.",
            adjective.to_lowercase(),
            noun.to_lowercase(),
            category_name.to_lowercase(),
            colour.to_lowercase()
        ),
        name,
        price: Money::new(whole * 100 + cents, currency),
        category: skeleton.categories.get(c).copied().unwrap_or(CategoryId(0)),
        brand,
        image: None,
        is_active: true,
        stock: seq.below(60) as i64,
    }
}

/// A simple SVG picture: a coloured tile with the product's initials.
pub fn svg(name: &str, seed: u64) -> String {
    let hue = seed % 360;
    let initials: String = name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .filter(|c| c.is_alphanumeric())
        .take(3)
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400" viewBox="0 0 400 400"><rect width="400" height="400" fill="hsl({hue},55%,55%)"/><circle cx="200" cy="170" r="90" fill="hsl({hue},60%,80%)"/><text x="200" y="340" font-family="sans-serif" font-size="64" text-anchor="middle" fill="#fff">{initials}</text></svg>"##
    )
}
