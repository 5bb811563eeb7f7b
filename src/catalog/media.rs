//! Uploaded images: kind sniffed from the first bytes (never from the file
//! name or the declared content type), files under `<data_dir>/media/`,
//! served at `/media/...`.
//!
//! Invariant: a file is written (to a temporary name, then renamed) only
//! after the whole upload was read and recognised, so a refused upload
//! leaves nothing behind; media names are generated, never taken from clients.

use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Largest image accepted, in bytes.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// The image formats accepted for upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Webp,
}

impl ImageKind {
    /// Recognises an image by its magic bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageKind::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageKind::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(ImageKind::Webp)
        } else {
            None
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpg",
            ImageKind::Webp => "webp",
        }
    }
}

/// The content type served for a media file name.
pub fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

pub fn media_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("media")
}

/// Writes `bytes` under `media/<folder>/<prefix>-<random>.<ext>` (fsynced)
/// and returns its public path `/media/<folder>/<file>`.
pub fn save(
    data_dir: &Path,
    folder: &str,
    prefix: &str,
    ext: &str,
    bytes: &[u8],
) -> std::io::Result<String> {
    let dir = media_dir(data_dir).join(folder);
    std::fs::create_dir_all(&dir)?;
    let mut random = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut random);
    let name = format!("{prefix}-{}.{ext}", hex::encode(random));
    let temp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, dir.join(&name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result?;
    Ok(format!("/media/{folder}/{name}"))
}

/// The file behind a public `/media/...` path, if the path is one of ours:
/// plain names only, so nothing outside the media dir is reachable.
pub fn resolve(data_dir: &Path, public_path: &str) -> Option<PathBuf> {
    let rest = public_path.strip_prefix("/media/")?;
    let mut path = media_dir(data_dir);
    let mut parts = 0;
    for part in rest.split('/') {
        let plain = !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !plain {
            return None;
        }
        path.push(part);
        parts += 1;
    }
    (parts == 2).then_some(path)
}

/// Removes a media file we stored earlier; external URLs are left alone.
pub fn remove(data_dir: &Path, public_path: &str) {
    if let Some(path) = resolve(data_dir, public_path) {
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(error = %e, path = %path.display(), "could not remove replaced media file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_bytes_only() {
        assert_eq!(
            ImageKind::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Some(ImageKind::Png)
        );
        assert_eq!(
            ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageKind::Webp)
        );
        assert_eq!(ImageKind::sniff(b"<svg></svg>"), None);
        assert_eq!(ImageKind::sniff(b"GIF89a"), None);
    }

    #[test]
    fn media_paths_cannot_escape_the_media_dir() {
        let dir = Path::new("/data");
        assert!(resolve(dir, "/media/products/a-1.png").is_some());
        for bad in [
            "/media/../secret",
            "/media/products/../../x",
            "/media/products/.hidden",
            "/media/a/b/c.png",
            "/media/products/",
            "https://example.com/a.png",
        ] {
            assert!(resolve(dir, bad).is_none(), "{bad}");
        }
    }
}
