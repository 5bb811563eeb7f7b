//! The confirmation outbox against the real server: .eml files without SMTP,
//! delivery to a small SMTP server written here, retries while SMTP is down,
//! and queued mail surviving restarts. Retry and poll durations are a few
//! milliseconds so nothing waits long.

use crate::helpers::{spawn_app_with, spawn_binary, test_settings};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use storefront::config::Settings;
use storefront::mail::{
    render_order_confirmation, ConfirmationLine, MailMessage, OrderConfirmation, OutboxEntry,
};
use storefront::startup::Application;
use storefront::store::{Store, StoreError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn fast_mail(settings: &mut Settings) {
    settings.mail.retry_base = Duration::from_millis(50);
    settings.mail.retry_max = Duration::from_millis(200);
    settings.mail.poll_interval = Duration::from_millis(50);
}

fn confirmation() -> MailMessage {
    render_order_confirmation(&OrderConfirmation {
        order_id: 42,
        customer_username: "alice".into(),
        customer_email: "alice@example.com".into(),
        lines: vec![ConfirmationLine {
            product_name: "Blue Mug".into(),
            quantity: 2,
            unit_price: "9.99".into(),
            line_total: "19.98".into(),
        }],
        total: "19.98".into(),
        currency: "EUR".into(),
        shipping_address: vec!["Alice Example".into(), "1 Main Street".into()],
        created_at: 1_700_000_000,
    })
}

/// Polls `check` until it yields a value, failing the test after 15 s.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn entry(store: &Store, id: u64) -> Option<OutboxEntry> {
    store.outbox_entry(id).expect("outbox readable")
}

fn eml_path(data_dir: &Path, id: u64) -> std::path::PathBuf {
    data_dir.join("mail").join("sent").join(format!("{id}.eml"))
}

/// A port on which nothing listens (it was free a moment ago).
fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// What the fake SMTP server accepted in one transaction.
#[derive(Debug)]
struct Received {
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

/// Serves just enough SMTP on `listener` for a client that sends plain text
/// without TLS or AUTH, and reports every accepted message.
fn fake_smtp(listener: TcpListener) -> mpsc::UnboundedReceiver<Received> {
    let (tx, rx) = mpsc::unbounded_channel();
    actix_web::rt::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            actix_web::rt::spawn(async move {
                let _ = smtp_session(stream, tx).await;
            });
        }
    });
    rx
}

async fn smtp_session(
    stream: TcpStream,
    received: mpsc::UnboundedSender<Received>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 fake.test ESMTP ready\r\n").await?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250 fake.test\r\n"
        } else if command.starts_with("MAIL FROM:") {
            mail_from = line["MAIL FROM:".len()..].trim().to_owned();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO:") {
            rcpt_to.push(line["RCPT TO:".len()..].trim().to_owned());
            b"250 OK\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                // Undo the client's dot-stuffing.
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push('\n');
            }
            let _ = received.send(Received {
                mail_from: std::mem::take(&mut mail_from),
                rcpt_to: std::mem::take(&mut rcpt_to),
                data,
            });
            b"250 queued\r\n"
        } else if command.starts_with("RSET") || command.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if command.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

async fn next_message(inbox: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(15), inbox.recv())
        .await
        .expect("a message within 15 s")
        .expect("fake SMTP server running")
}

fn assert_is_the_confirmation(raw: &str) {
    for expected in [
        "To: alice@example.com",
        "Subject: Your Storefront order #42 is confirmed",
        "Hello alice,",
        "Order number: 42",
        "Blue Mug\r\n    2 x 9.99 EUR = 19.98 EUR",
        "Total: 19.98 EUR",
    ] {
        let expected = expected.replace("\r\n", "\n");
        let normalised = raw.replace("\r\n", "\n");
        assert!(
            normalised.contains(&expected),
            "missing {expected:?} in:\n{raw}"
        );
    }
}

#[actix_web::test]
async fn without_smtp_a_queued_mail_is_written_as_an_eml_file_and_leaves_the_outbox() {
    let app = spawn_app_with(fast_mail).await;
    let id = app.store.enqueue_mail(&confirmation()).unwrap();
    app.store.durable().await.unwrap();

    eventually("the outbox entry to go", || {
        entry(&app.store, id).is_none().then_some(())
    })
    .await;
    let raw = std::fs::read_to_string(eml_path(&app.data_dir, id)).expect("the .eml file");
    assert_is_the_confirmation(&raw);
    assert!(raw.contains("From: shop@localhost"), "{raw}");
    assert!(
        raw.contains(&format!("Message-ID: <mail-{id}@localhost>")),
        "{raw}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(app.data_dir.join("mail").join("sent"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.ends_with(".eml"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[actix_web::test]
async fn with_smtp_configured_the_mail_is_sent_to_the_server_and_leaves_the_outbox() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut inbox = fake_smtp(listener);
    let app = spawn_app_with(|settings| {
        fast_mail(settings);
        settings.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        settings.mail.from = "orders@shop.example".into();
    })
    .await;

    let id = app.store.enqueue_mail(&confirmation()).unwrap();
    app.store.durable().await.unwrap();

    let message = next_message(&mut inbox).await;
    assert_eq!(message.mail_from, "<orders@shop.example>");
    assert_eq!(message.rcpt_to, ["<alice@example.com>"]);
    assert_is_the_confirmation(&message.data);
    assert!(message.data.contains("From: orders@shop.example"));
    eventually("the outbox entry to go", || {
        entry(&app.store, id).is_none().then_some(())
    })
    .await;
    assert!(
        !app.data_dir.join("mail").exists(),
        "no .eml files when SMTP is configured"
    );
}

#[actix_web::test]
async fn while_smtp_is_down_the_mail_stays_queued_with_its_error_and_goes_out_once_it_is_back() {
    let port = unused_port();
    let app = spawn_app_with(|settings| {
        fast_mail(settings);
        settings.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let id = app.store.enqueue_mail(&confirmation()).unwrap();
    app.store.durable().await.unwrap();

    // Several failed attempts, each one recorded, and the entry still there.
    let failed = eventually("two failed attempts", || {
        entry(&app.store, id).filter(|e| e.attempts >= 2)
    })
    .await;
    let error = failed.last_error.expect("the error is recorded");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert_eq!(failed.message, confirmation());

    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut inbox = fake_smtp(TcpListener::bind(addr).await.unwrap());
    let message = next_message(&mut inbox).await;
    assert_is_the_confirmation(&message.data);
    eventually("the outbox entry to go", || {
        entry(&app.store, id).is_none().then_some(())
    })
    .await;
}

/// Builds the application on `settings`, retrying while the previous
/// instance is still letting go of the data directory.
async fn build_when_free(settings: &Settings) -> Application {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match Application::build(settings.clone()).await {
            Ok(app) => return app,
            Err(e) if Instant::now() < deadline => {
                let locked = e
                    .downcast_ref::<StoreError>()
                    .is_some_and(|e| matches!(e, StoreError::Locked(_) | StoreError::Sled(_)));
                assert!(locked, "unexpected start-up error: {e:#}");
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("server did not start again: {e:#}"),
        }
    }
}

#[actix_web::test]
async fn queued_mail_survives_a_restart_and_is_delivered_after_it() {
    crate::helpers::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    fast_mail(&mut settings);
    settings.mail.smtp_url = Some(format!("smtp://127.0.0.1:{}", unused_port()));

    // First life: SMTP is unreachable, so the message can only wait.
    let app = build_when_free(&settings).await;
    let (handle, store) = (app.handle(), app.store());
    let running = actix_web::rt::spawn(app.run_until_stopped());
    let id = store.enqueue_mail(&confirmation()).unwrap();
    store.durable().await.unwrap();
    eventually("a failed attempt", || {
        entry(&store, id).filter(|e| e.attempts >= 1)
    })
    .await;
    drop(store);
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    assert!(!eml_path(dir.path(), id).exists());

    // Second life without SMTP: the same message leaves as a file.
    settings.mail.smtp_url = None;
    let app = build_when_free(&settings).await;
    let (handle, store) = (app.handle(), app.store());
    let running = actix_web::rt::spawn(app.run_until_stopped());
    eventually("the outbox entry to go", || {
        entry(&store, id).is_none().then_some(())
    })
    .await;
    let raw = std::fs::read_to_string(eml_path(dir.path(), id)).expect("the .eml file");
    assert_is_the_confirmation(&raw);
    drop(store);
    handle.stop(true).await;
    running.await.unwrap().unwrap();
}

/// Opens the store once the server process that used it has gone.
fn open_when_free(dir: &Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("store did not open: {e}"),
        }
    }
}

#[actix_web::test]
async fn the_server_binary_delivers_mail_queued_before_it_started_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_when_free(dir.path());
    let id = store.enqueue_mail(&confirmation()).unwrap();
    store.durable().await.unwrap();
    drop(store);

    let mut server =
        spawn_binary(dir.path(), &["--mail-poll-interval", "1"]).expect("server starts");
    eventually("the .eml file", || {
        eml_path(dir.path(), id).exists().then_some(())
    })
    .await;
    server.terminate();
    assert!(
        server
            .child
            .try_wait()
            .unwrap()
            .is_some_and(|s| s.success()),
        "graceful exit"
    );

    let store = open_when_free(dir.path());
    assert!(
        entry(&store, id).is_none(),
        "delivered mail left the outbox"
    );
    assert_is_the_confirmation(&std::fs::read_to_string(eml_path(dir.path(), id)).unwrap());
}

#[actix_web::test]
async fn a_woken_sender_delivers_at_once_instead_of_at_the_next_poll() {
    crate::helpers::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    fast_mail(&mut settings);
    settings.mail.poll_interval = Duration::from_secs(3600);
    let app = build_when_free(&settings).await;
    let (handle, store, mailer) = (app.handle(), app.store(), app.mailer());
    let running = actix_web::rt::spawn(app.run_until_stopped());
    // Let the start-up pass find the outbox empty and go to sleep.
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;

    let id = mailer.enqueue(&confirmation()).await.unwrap();
    eventually("the outbox entry to go", || {
        entry(&store, id).is_none().then_some(())
    })
    .await;
    assert!(eml_path(dir.path(), id).exists());
    drop(store);
    handle.stop(true).await;
    running.await.unwrap().unwrap();
}

#[actix_web::test]
async fn mail_queued_inside_a_transaction_is_sent_only_if_the_transaction_commits() {
    use sled::transaction::ConflictableTransactionError;
    use sled::Transactional;
    use storefront::mail::{enqueue_in_tx, PreparedMail};

    let app = spawn_app_with(fast_mail).await;
    let trees = &app.store.trees;
    let now = storefront::domain::time::now_unix();

    // Aborted: neither the other record nor the mail exists.
    let aborted = PreparedMail::new(app.store.next_id().unwrap(), &confirmation(), now).unwrap();
    let result: Result<(), _> = (&trees.meta, &trees.outbox_by_id).transaction(|(meta, outbox)| {
        meta.insert("mail-test", "order")?;
        enqueue_in_tx(outbox, &aborted)?;
        Err(ConflictableTransactionError::Abort("out of stock"))
    });
    assert!(result.is_err());
    assert!(entry(&app.store, aborted.id()).is_none());
    assert!(trees.meta.get("mail-test").unwrap().is_none());

    // Committed: the mail goes out once the write is durable.
    let committed = PreparedMail::new(app.store.next_id().unwrap(), &confirmation(), now).unwrap();
    (&trees.meta, &trees.outbox_by_id)
        .transaction(|(meta, outbox)| {
            meta.insert("mail-test", "order")?;
            enqueue_in_tx(outbox, &committed)?;
            Ok::<_, ConflictableTransactionError<()>>(())
        })
        .unwrap();
    app.store.durable().await.unwrap();
    eventually("the committed mail to be delivered", || {
        eml_path(&app.data_dir, committed.id())
            .exists()
            .then_some(())
    })
    .await;
    assert!(!eml_path(&app.data_dir, aborted.id()).exists());
}

#[actix_web::test]
async fn a_checkout_leaves_an_order_confirmation_for_the_shopper() {
    let app = crate::helpers::spawn_app().await;
    let staff = app.staff("boss").await;
    let category = crate::helpers::body(
        app.post(
            "/api/categories/",
            Some(&staff.access),
            &serde_json::json!({"name": "Kitchen"}),
        )
        .await,
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let product = crate::helpers::body(
        app.post(
            "/api/products/",
            Some(&staff.access),
            &serde_json::json!({"name": "Blue Mug", "price": "12.50", "category": category, "stock": 5}),
        )
        .await,
    )
    .await["id"]
        .as_u64()
        .unwrap();
    let shopper = app.shopper("ann").await;
    let added = app
        .post(
            "/api/cart/add/",
            Some(&shopper.access),
            &serde_json::json!({"product_id": product, "quantity": 2}),
        )
        .await;
    assert_eq!(added.status(), reqwest::StatusCode::OK);
    let address = serde_json::json!({"shipping_address": {"address": "1 Main St", "city": "Lyon", "country": "FR"}});
    let placed = app
        .post("/api/checkout/", Some(&shopper.access), &address)
        .await;
    assert_eq!(placed.status(), reqwest::StatusCode::CREATED);
    let order_id = crate::helpers::body(placed).await["id"].as_u64().unwrap();

    let sent = app.data_dir.join("mail").join("sent");
    let text = eventually("the confirmation file", || {
        std::fs::read_dir(&sent)
            .ok()?
            .filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .and_then(|e| std::fs::read_to_string(e.path()).ok())
    })
    .await;
    assert!(text.contains("To: ann@example.com"), "{text}");
    assert!(text.contains(&order_id.to_string()), "{text}");
    assert!(
        text.contains("Blue Mug") && text.contains("25.00"),
        "{text}"
    );
}

#[actix_web::test]
async fn a_backlog_larger_than_a_pass_leaves_one_file_each_and_a_bad_address_only_holds_its_own_mail(
) {
    crate::helpers::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = open_when_free(dir.path());
    // First, so every later pass reads past its held entry.
    let mut bad = confirmation();
    bad.to = "not an address".into();
    let bad_id = store.enqueue_mail(&bad).unwrap();
    let mut ids = Vec::new();
    // More than one pass of the sender (1,024 entries, in batches of 256),
    // queued before it starts.
    for n in 0..1_100 {
        let mut message = confirmation();
        message.subject = format!("Order {n}");
        ids.push(store.enqueue_mail(&message).unwrap());
    }
    store.durable().await.unwrap();
    drop(store);

    let mut settings = test_settings(dir.path());
    fast_mail(&mut settings);
    let app = build_when_free(&settings).await;
    let (handle, store) = (app.handle(), app.store());
    let running = actix_web::rt::spawn(app.run_until_stopped());
    eventually("every good message to leave the outbox", || {
        ids.iter()
            .all(|id| entry(&store, *id).is_none())
            .then_some(())
    })
    .await;
    for (n, id) in ids.iter().enumerate() {
        let raw = std::fs::read_to_string(eml_path(dir.path(), *id)).expect("an .eml per message");
        assert!(raw.contains(&format!("Subject: Order {n}")), "{id}: {raw}");
    }
    let held = eventually("the bad address to be recorded", || {
        entry(&store, bad_id).filter(|e| e.attempts >= 1)
    })
    .await;
    assert!(
        held.last_error
            .as_deref()
            .unwrap_or("")
            .contains("not an address"),
        "{held:?}"
    );
    assert!(!eml_path(dir.path(), bad_id).exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("mail").join("sent"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
    drop(store);
    handle.stop(true).await;
    running.await.unwrap().unwrap();
}
