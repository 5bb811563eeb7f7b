//! Turning an outbox entry into a sent message: over SMTP with lettre when an
//! SMTP URL is configured, otherwise as an RFC 5322 `.eml` file under
//! `<data_dir>/mail/sent/<id>.eml`.
//!
//! The caller deletes an outbox entry only once the message is out of our
//! hands: the SMTP server accepted it with 250, or the file was renamed into
//! place and a later `sync` made it durable.

use super::outbox::OutboxEntry;
use super::MailError;
use crate::config::MailSettings;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A stalled SMTP server must not hold the outbox forever.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, the only part of the URL that is ever logged.
        host: String,
    },
    Files {
        dir: PathBuf,
        writer: FileWriter,
    },
}

type FileJob = Box<dyn FnOnce() + Send>;

/// The thread that writes and syncs the .eml files. Its own thread, at a
/// lower scheduling priority on Linux, because creating thousands of files
/// is slow kernel work (inode allocation) that would otherwise take CPU
/// from checkouts in a storm: the outbox holds the messages durably, so
/// they can wait for a quieter moment.
pub(crate) struct FileWriter {
    jobs: std::sync::mpsc::Sender<FileJob>,
}

/// Nice value of the mail thread: well behind request handling, but not
/// idle-only, so mail keeps moving under steady load.
#[cfg(target_os = "linux")]
const MAIL_THREAD_NICE: i32 = 10;

impl FileWriter {
    fn start() -> std::io::Result<Self> {
        let (jobs, inbox) = std::sync::mpsc::channel::<FileJob>();
        std::thread::Builder::new()
            .name("storefront-mail".into())
            .spawn(move || {
                #[cfg(target_os = "linux")]
                if let Err(e) = rustix::process::setpriority_process(
                    Some(rustix::thread::gettid()),
                    MAIL_THREAD_NICE,
                ) {
                    tracing::debug!(error = %e, "mail thread keeps the normal priority");
                }
                // Ends when the Deliverer (the only sender) goes.
                for job in inbox {
                    job();
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the mail thread and waits for its result.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| std::io::Error::other("the mail thread stopped"))?;
        result
            .await
            .map_err(|_| std::io::Error::other("the mail thread stopped"))?
    }
}

/// A configured way out plus the From mailbox.
pub(crate) struct Deliverer {
    transport: Transport,
    from: Mailbox,
}

impl Deliverer {
    /// Checks the configuration at start, so a typo stops the server instead
    /// of failing every message later.
    pub(crate) fn from_settings(
        settings: &MailSettings,
        data_dir: &Path,
    ) -> Result<Self, MailError> {
        let from: Mailbox = settings.from.parse().map_err(|e| MailError::Address {
            address: settings.from.clone(),
            reason: format!("{e}"),
        })?;
        let transport = match &settings.smtp_url {
            Some(url) => {
                let host = host_of(url)?;
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    // lettre's error text names the scheme, never the password.
                    .map_err(|e| MailError::Config(format!("STOREFRONT_SMTP_URL for {host}: {e}")))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                tracing::info!(smtp_host = %host, "mail goes out over SMTP");
                Transport::Smtp { transport, host }
            }
            None => {
                let dir = data_dir.join("mail").join("sent");
                std::fs::create_dir_all(&dir)?;
                tracing::info!(dir = %dir.display(), "no SMTP configured: mail is written as .eml files");
                Transport::Files {
                    dir,
                    writer: FileWriter::start()?,
                }
            }
        };
        Ok(Self { transport, from })
    }

    /// Delivers a batch of entries and returns one outcome per entry, in
    /// order. Over SMTP each message is its own conversation and is out of
    /// our hands once it succeeded. As files, success means written and
    /// renamed into place but not yet durable: the caller keeps the entries
    /// until a later `sync` (see `needs_sync`), so many messages share one.
    pub(crate) async fn deliver_all(
        &self,
        batch: &[(u64, OutboxEntry)],
    ) -> Vec<Result<(), MailError>> {
        match &self.transport {
            Transport::Smtp { transport, host } => {
                let mut outcomes = Vec::with_capacity(batch.len());
                for (id, entry) in batch {
                    let outcome =
                        match build_message(*id, entry, &self.from) {
                            Ok(message) => transport.send(message).await.map(drop).map_err(|e| {
                                MailError::Smtp {
                                    host: host.clone(),
                                    reason: e.to_string(),
                                }
                            }),
                            Err(e) => Err(e),
                        };
                    outcomes.push(outcome);
                }
                outcomes
            }
            Transport::Files { dir, writer } => {
                let mut outcomes: Vec<Result<(), MailError>> = Vec::with_capacity(batch.len());
                let mut files = Vec::with_capacity(batch.len());
                for (id, entry) in batch {
                    match build_message(*id, entry, &self.from) {
                        Ok(message) => {
                            files.push((*id, message.formatted()));
                            outcomes.push(Ok(()));
                        }
                        Err(e) => outcomes.push(Err(e)),
                    }
                }
                if files.is_empty() {
                    return outcomes;
                }
                let dir = dir.clone();
                let written = writer.run(move || write_emls(&dir, &files)).await;
                if let Err(error) = written {
                    // Which files made it is unknown: every message of the
                    // batch is tried again (a duplicate keeps its name).
                    let kind = error.kind();
                    let text = error.to_string();
                    for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                        *outcome = Err(MailError::File(std::io::Error::new(kind, text.clone())));
                    }
                }
                outcomes
            }
        }
    }

    /// True when a successful delivery still needs `sync` before its
    /// outbox entry may go (the .eml files).
    pub(crate) fn needs_sync(&self) -> bool {
        matches!(self.transport, Transport::Files { .. })
    }

    /// Makes the files of these delivered messages durable, names and
    /// contents. On Linux one `syncfs` covers them all; elsewhere each
    /// file is fsynced. Then the directory, for the renames.
    pub(crate) async fn sync(&self, ids: Vec<u64>) -> Result<(), MailError> {
        let Transport::Files { dir, writer } = &self.transport else {
            return Ok(());
        };
        let dir = dir.clone();
        writer
            .run(move || sync_emls(&dir, &ids))
            .await
            .map_err(MailError::File)
    }
}

/// The RFC 5322 message for an entry. Message-ID and Date derive from the
/// entry, so a second delivery after a crash is recognisably the same mail.
fn build_message(id: u64, entry: &OutboxEntry, from: &Mailbox) -> Result<Message, MailError> {
    let to: Mailbox = entry.message.to.parse().map_err(|e| MailError::Address {
        address: entry.message.to.clone(),
        reason: format!("{e}"),
    })?;
    let created = u64::try_from(entry.created_at).unwrap_or(0);
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(entry.message.subject.clone())
        .message_id(Some(format!("<mail-{id}@{}>", from.email.domain())))
        .date(SystemTime::UNIX_EPOCH + Duration::from_secs(created))
        .header(ContentType::TEXT_PLAIN)
        .body(entry.message.text_body.clone())
        .map_err(|e| MailError::Build(e.to_string()))
}

/// Writes each `<dir>/<id>.eml` whole: a hidden temp file, renamed into
/// place, so a reader never sees half a message. Nothing is synced here
/// (`sync_emls` does that for many files at once); until then the outbox
/// keeps the entries, so after a crash they are written again under the
/// same names.
fn write_emls(dir: &Path, files: &[(u64, Vec<u8>)]) -> std::io::Result<()> {
    for (id, bytes) in files {
        let temp = dir.join(format!(".{id}.eml.tmp"));
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        drop(file);
        std::fs::rename(&temp, dir.join(format!("{id}.eml")))?;
    }
    Ok(())
}

fn sync_emls(dir: &Path, ids: &[u64]) -> std::io::Result<()> {
    let directory = std::fs::File::open(dir)?;
    #[cfg(target_os = "linux")]
    {
        let _ = ids;
        rustix::fs::syncfs(&directory)?;
    }
    #[cfg(not(target_os = "linux"))]
    for id in ids {
        std::fs::File::open(dir.join(format!("{id}.eml")))?.sync_all()?;
    }
    directory.sync_all()
}

/// `host:port` of an SMTP URL, for logs and errors; user and password dropped.
fn host_of(url: &str) -> Result<String, MailError> {
    // Never echo the URL itself: it may contain the password.
    let parsed = url::Url::parse(url)
        .map_err(|e| MailError::Config(format!("STOREFRONT_SMTP_URL is not a URL: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| MailError::Config("STOREFRONT_SMTP_URL has no host".into()))?;
    Ok(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_host_never_contains_the_credentials() {
        assert_eq!(
            host_of("smtps://user:s3cret@mail.example.com:465").unwrap(),
            "mail.example.com:465"
        );
        assert_eq!(host_of("smtp://localhost").unwrap(), "localhost");
        let error = host_of("not a url with s3cret").unwrap_err().to_string();
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn bad_smtp_urls_and_from_addresses_are_start_up_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::config::Settings::for_data_dir(dir.path()).mail;
        settings.smtp_url = Some("ftp://user:s3cret@host".into());
        let error = Deliverer::from_settings(&settings, dir.path())
            .err()
            .expect("ftp is refused")
            .to_string();
        assert!(!error.contains("s3cret"), "{error}");
        settings.smtp_url = None;
        settings.from = "not an address".into();
        assert!(Deliverer::from_settings(&settings, dir.path()).is_err());
    }

    #[test]
    fn messages_carry_a_stable_id_and_date() {
        let entry = OutboxEntry {
            message: super::super::MailMessage {
                to: "Alice <alice@example.com>".into(),
                subject: "Your order".into(),
                text_body: "Hello\n".into(),
            },
            attempts: 0,
            next_attempt_at_ms: 0,
            created_at: 1_700_000_000,
            last_error: None,
        };
        let from: Mailbox = "shop@example.org".parse().unwrap();
        let first = build_message(9, &entry, &from).unwrap().formatted();
        let again = build_message(9, &entry, &from).unwrap().formatted();
        assert_eq!(first, again);
        let text = String::from_utf8(first).unwrap();
        assert!(text.contains("Message-ID: <mail-9@example.org>"), "{text}");
        assert!(
            text.contains("To: \"Alice\" <alice@example.com>")
                || text.contains("To: Alice <alice@example.com>"),
            "{text}"
        );
    }
}
