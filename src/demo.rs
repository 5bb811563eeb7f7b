//! The demo shop: `--demo` seeds it on the first start of a data directory.
//! Demo passwords are random per data directory (a demo left reachable on a
//! network must not have a password that is in the repository); they are
//! kept in `demo-credentials.txt` (0600) and printed at every demo start.

use crate::auth::passwords::hash_blocking;
use crate::catalog::{generate, media};
use crate::domain::account::{Email, NewUser, Profile, Username};
use crate::domain::money::Currency;
use crate::store::Store;
use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};
use std::io::Write;
use std::path::Path;

const SEEDED_FLAG: &str = "demo_seeded";
/// Separate from the users' flag so data dirs seeded before the catalog existed get one.
const CATALOG_SEEDED_FLAG: &str = "demo_catalog_seeded";
const DEMO_PRODUCTS: u64 = 200;
const CREDENTIALS_FILE: &str = "demo-credentials.txt";

/// How to log in to the demo shop.
#[derive(Debug, Clone)]
pub struct DemoLogins {
    pub shopper: (String, String),
    pub staff: (String, String),
}

pub async fn seed(store: &Store, currency: Currency) -> anyhow::Result<DemoLogins> {
    seed_catalog(store, currency).await?;
    let path = store.data_dir().join(CREDENTIALS_FILE);
    if store.meta_flag(SEEDED_FLAG)? {
        return read_credentials(&path);
    }
    let logins = DemoLogins {
        shopper: ("shopper".into(), random_password()),
        staff: ("admin".into(), random_password()),
    };
    for ((username, password), is_staff) in [(&logins.shopper, false), (&logins.staff, true)] {
        let profile = Profile {
            address: "1 Demo Street".into(),
            city: "Springfield".into(),
            postal_code: "12345".into(),
            country: "US".into(),
            ..Profile::default()
        };
        store.create_user(NewUser {
            username: Username::parse(username).map_err(anyhow::Error::msg)?,
            email: Email::parse(&format!("{username}@demo.storefront.test"))
                .map_err(anyhow::Error::msg)?,
            password_hash: hash_blocking(password)?,
            is_staff,
            profile,
        })?;
    }
    write_credentials(&path, &logins)?;
    store.set_meta_flag(SEEDED_FLAG)?;
    store.durable().await?;
    Ok(logins)
}

/// ~200 products in 10 categories and 8 brands, each with an SVG picture.
/// Written straight to the store: the search index is built after seeding.
async fn seed_catalog(store: &Store, currency: Currency) -> anyhow::Result<()> {
    if store.meta_flag(CATALOG_SEEDED_FLAG)? {
        return Ok(());
    }
    let skeleton = generate::create_skeleton(store)?;
    let mut seq = generate::Seq::new(2024);
    for n in 1..=DEMO_PRODUCTS {
        let mut new = generate::product(n, &mut seq, &skeleton, currency);
        let svg = generate::svg(&new.name, seq.next_u64());
        if store
            .trees
            .products_by_slug
            .contains_key(new.slug.as_bytes())?
        {
            continue;
        }
        new.image = Some(media::save(
            store.data_dir(),
            "products",
            &format!("demo-{n}"),
            "svg",
            svg.as_bytes(),
        )?);
        store.create_product(new)?;
    }
    store.set_meta_flag(CATALOG_SEEDED_FLAG)?;
    store.durable().await?;
    Ok(())
}

fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 16)
}

fn write_credentials(path: &Path, logins: &DemoLogins) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "shopper {} {}", logins.shopper.0, logins.shopper.1)?;
    writeln!(file, "staff {} {}", logins.staff.0, logins.staff.1)?;
    file.sync_all()?;
    Ok(())
}

fn read_credentials(path: &Path) -> anyhow::Result<DemoLogins> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut shopper = None;
    let mut staff = None;
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [role, user, password] = parts.as_slice() {
            let pair = (user.to_string(), password.to_string());
            match *role {
                "shopper" => shopper = Some(pair),
                "staff" => staff = Some(pair),
                _ => {}
            }
        }
    }
    Ok(DemoLogins {
        shopper: shopper.context("demo shopper missing from credentials file")?,
        staff: staff.context("demo staff missing from credentials file")?,
    })
}
