//! The JWT signing secret: from configuration, or created once per data
//! directory (0600) so tokens stay valid across restarts.

use rand::RngCore;
use std::io::Write;
use std::path::Path;

const FILE_NAME: &str = "jwt_secret";

pub fn load_or_create(data_dir: &Path, configured: Option<&str>) -> std::io::Result<Vec<u8>> {
    if let Some(secret) = configured {
        if secret.len() < 32 {
            return Err(std::io::Error::other(
                "STOREFRONT_JWT_SECRET must be at least 32 characters",
            ));
        }
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim())
            .map_err(|_| std::io::Error::other(format!("{} is not hex", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path)?;
            file.write_all(hex::encode(&secret).as_bytes())?;
            file.sync_all()?;
            Ok(secret)
        }
        Err(e) => Err(e),
    }
}
