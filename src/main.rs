//! The `storefront` command: serve the shop, create a staff account, seed
//! the demo shop.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use storefront::auth::accounts::create_user_blocking;
use storefront::config::ServeArgs;
use storefront::domain::account::{ProfilePatch, Registration};
use storefront::startup::Application;
use storefront::store::Store;

#[derive(Parser)]
#[command(name = "storefront", version, about = "A real-time e-commerce server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the shop.
    Serve(Box<ServeArgs>),
    /// Create a staff account. The password comes from
    /// STOREFRONT_ADMIN_PASSWORD or a prompt, never from a flag.
    CreateAdmin {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "STOREFRONT_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Import products from a CSV file (name, description, price, category,
    /// brand, stock, image_url) into a stopped shop's data directory.
    Import {
        /// The CSV file, with a header row.
        file: PathBuf,
        #[arg(long, env = "STOREFRONT_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The shop currency the prices are in.
        #[arg(long, env = "STOREFRONT_CURRENCY", default_value = "USD")]
        currency: String,
    },
    /// Seed the demo shop into a data directory without serving it.
    SeedDemo {
        #[arg(long, env = "STOREFRONT_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

fn main() {
    storefront::telemetry::init("info,sled=warn");
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::CreateAdmin {
            username,
            email,
            data_dir,
        } => create_admin(&username, &email, &data_dir),
        Command::SeedDemo { data_dir } => seed_demo(data_dir),
        Command::Import {
            file,
            data_dir,
            currency,
        } => import(&file, &data_dir, &currency),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.into_settings();
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "Storefront listening on http://127.0.0.1:{}",
            app.port()
        )?;
        if let Some(logins) = app.demo_logins() {
            writeln!(
                out,
                "Demo shop: log in as shopper '{}' with password '{}' (staff: '{}' / '{}')",
                logins.shopper.0, logins.shopper.1, logins.staff.0, logins.staff.1
            )?;
        }
        out.flush()?;
        drop(out);
        app.run_until_stopped().await
    })
}

fn create_admin(username: &str, email: &str, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let password = match std::env::var("STOREFRONT_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let first = rpassword::prompt_password("Password for the new staff account: ")
                .context(
                "reading the password (set STOREFRONT_ADMIN_PASSWORD when there is no terminal)",
            )?;
            let again = rpassword::prompt_password("Again: ")?;
            anyhow::ensure!(first == again, "the passwords differ");
            first
        }
    };
    let form = Registration::parse(username, email, &password, ProfilePatch::default()).map_err(
        |errors| {
            let list: Vec<String> = errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect();
            anyhow::anyhow!(list.join("; "))
        },
    )?;
    let store = Store::open(data_dir)?;
    let user = create_user_blocking(&store, form, true)?;
    println!("Created staff account '{}' (id {})", user.username, user.id);
    Ok(())
}

fn seed_demo(data_dir: PathBuf) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let store = Store::open(&data_dir)?;
        let logins =
            storefront::demo::seed(&store, storefront::domain::money::Currency::USD).await?;
        println!(
            "Demo shop seeded in {}: shopper '{}' / '{}', staff '{}' / '{}'",
            data_dir.display(),
            logins.shopper.0,
            logins.shopper.1,
            logins.staff.0,
            logins.staff.1
        );
        Ok(())
    })
}

fn import(
    file: &std::path::Path,
    data_dir: &std::path::Path,
    currency: &str,
) -> anyhow::Result<()> {
    let currency =
        storefront::domain::money::Currency::parse(currency).map_err(anyhow::Error::msg)?;
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let store = Store::open(data_dir)?;
    let catalog = storefront::catalog::Catalog::open(store, currency)?;
    let report =
        storefront::catalog::import::import_products(&catalog, input, |done, rejected| {
            eprint!("\rimported {done} products, {rejected} rows rejected");
        })?;
    eprintln!();
    for (line, problem) in &report.rejected {
        println!("line {line}: {problem}");
    }
    println!(
        "Imported {} products; {} rows rejected.",
        report.imported,
        report.rejected.len()
    );
    Ok(())
}
