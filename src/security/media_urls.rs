//! Signed media URLs: `<PUBLIC_URL>media/<expires>/<signature>/<path>`. A `<video>` tag cannot
//! send an Authorization header, so the URL itself carries a short-lived permission. The
//! signature covers the expiry and the *folder* of a transcode (`videos/<id>/<generation>`), not
//! the file: relative URLs inside HLS playlists and the thumbnails VTT resolve to files of the
//! same folder and stay valid. Expiries are rounded to a window, so a URL is stable for a while
//! (browser caches, ETags) and lives between one and two windows.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a window lasts (URLs live between one and two of these).
pub(crate) const WINDOW_SECONDS: u64 = 6 * 3600;

/// Signs and checks media URLs; cheap to clone.
#[derive(Clone)]
pub struct MediaSigner {
    key: Vec<u8>,
    /// Signatures by `<expires>:<scope>`: a list shows up to eight files of one folder per
    /// video, and the same folders on every request of a window.
    signatures: moka::sync::Cache<String, String>,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a media URL is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaUrlError {
    /// Malformed, tampered with or for another path.
    Invalid,
    /// Past its expiry.
    Expired,
}

impl MediaSigner {
    /// A signer with a key derived from the server secret.
    pub fn new(secret: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"videoflix media urls v1");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
            signatures: moka::sync::Cache::new(100_000),
        }
    }

    /// The expiry given to URLs made now.
    pub fn current_expiry() -> u64 {
        Self::expiry(unix_now())
    }

    /// The expiry given to URLs made at `now` (Unix seconds).
    pub fn expiry(now: u64) -> u64 {
        (now / WINDOW_SECONDS + 2) * WINDOW_SECONDS
    }

    /// `<expires>/<signature>/<path>` for a stored media path, or None for a path that could
    /// not be served anyway.
    pub fn sign(&self, path: &str, expires: u64) -> Option<String> {
        let scope = scope(path)?;
        Some(format!(
            "{expires}/{}/{path}",
            self.signature(scope, expires)
        ))
    }

    /// Checks the parts of a request path; Ok gives the stored path to serve.
    pub fn verify<'a>(
        &self,
        expires: &str,
        signature: &str,
        path: &'a str,
        now: u64,
    ) -> Result<&'a str, MediaUrlError> {
        // One canonical form per URL: digits only, no sign, no leading zero.
        let canonical = !expires.is_empty()
            && expires.bytes().all(|b| b.is_ascii_digit())
            && (expires == "0" || !expires.starts_with('0'));
        if !canonical {
            return Err(MediaUrlError::Invalid);
        }
        let expires: u64 = expires.parse().map_err(|_| MediaUrlError::Invalid)?;
        let scope = scope(path).ok_or(MediaUrlError::Invalid)?;
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| MediaUrlError::Invalid)?;
        if given.len() != 16 {
            return Err(MediaUrlError::Invalid);
        }
        // Constant-time comparison of the truncated tag.
        self.mac(scope, expires)
            .verify_truncated_left(&given)
            .map_err(|_| MediaUrlError::Invalid)?;
        if expires < now {
            return Err(MediaUrlError::Expired);
        }
        Ok(path)
    }

    /// The URLs of one answer, all expiring at `expires`, under `base` (`<PUBLIC_URL>media/`).
    pub fn urls<'a>(&'a self, base: &'a str, expires: u64) -> AnswerUrls<'a> {
        AnswerUrls {
            signer: self,
            base,
            expires,
            last: std::cell::RefCell::new(None),
        }
    }

    fn mac(&self, scope: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{expires}:{scope}").as_bytes());
        mac
    }

    fn signature(&self, scope: &str, expires: u64) -> String {
        self.signatures.get_with(format!("{expires}:{scope}"), || {
            let tag = self.mac(scope, expires).finalize().into_bytes();
            URL_SAFE_NO_PAD.encode(&tag[..16])
        })
    }
}

/// Signs the media URLs of one answer. A video's files share one folder, so its signature is
/// looked up once for all of them, and each URL is the base, that prefix and the path put
/// together (no URL parsing: every segment of a signable path is a plain name).
pub struct AnswerUrls<'a> {
    signer: &'a MediaSigner,
    base: &'a str,
    expires: u64,
    /// The last folder signed and its `<base><expires>/<signature>/` prefix.
    last: std::cell::RefCell<Option<(String, String)>>,
}

impl AnswerUrls<'_> {
    /// The signed, absolute URL of a stored media path; '' for none or one that could not be
    /// served.
    pub fn url(&self, path: &str) -> String {
        let Some(scope) = scope(path) else {
            return String::new();
        };
        let mut last = self.last.borrow_mut();
        let (_, prefix) = match &mut *last {
            Some(held) if held.0 == scope => held,
            slot => slot.insert((
                scope.to_owned(),
                format!(
                    "{}{}/{}/",
                    self.base,
                    self.expires,
                    self.signer.signature(scope, self.expires)
                ),
            )),
        };
        let mut url = String::with_capacity(prefix.len() + path.len());
        url.push_str(prefix);
        url.push_str(path);
        url
    }
}

/// The signed folder of a stored path: `videos/<id>/<name>`; None unless every segment is a
/// plain name (letters, digits, `.`, `-`, `_`; no `..`, no empty segment).
fn scope(path: &str) -> Option<&str> {
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
    };
    // Checked without allocating: this runs for every URL of every answer.
    let mut segments = path.split('/');
    let (mut taken, mut end) = (0, 0);
    for segment in segments.by_ref().take(3) {
        if !plain(segment) || (taken == 0 && segment != "videos") {
            return None;
        }
        end += segment.len() + usize::from(taken > 0);
        taken += 1;
    }
    (taken == 3 && segments.all(plain)).then(|| &path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn the_expiry_has_one_canonical_form() {
        let signer = MediaSigner::new("k");
        let signed = signer.sign("videos/1/g/a.mp4", 2_000).expect("signed");
        let mut parts = signed.splitn(3, '/');
        let (expires, signature, path) = (
            parts.next().expect("expires"),
            parts.next().expect("signature"),
            parts.next().expect("path"),
        );
        assert_eq!(signer.verify(expires, signature, path, 1_000), Ok(path));
        for other in [
            format!("+{expires}"),
            format!("0{expires}"),
            format!("{expires} "),
        ] {
            assert_eq!(
                signer.verify(&other, signature, path, 1_000),
                Err(MediaUrlError::Invalid),
                "{other:?}"
            );
        }
    }

    #[test]
    fn a_signed_folder_serves_every_file_in_it_until_expiry() {
        let signer = MediaSigner::new("secret");
        let expires = MediaSigner::expiry(NOW);
        assert!(expires > NOW + WINDOW_SECONDS - 1);
        let url = signer
            .sign("videos/7/abc/hls/master.m3u8", expires)
            .expect("signed");
        let (exp, rest) = url.split_once('/').expect("exp");
        let (sig, path) = rest.split_once('/').expect("sig");
        assert_eq!(signer.verify(exp, sig, path, NOW), Ok(path));
        // A file beside it (what a playlist's relative URL asks for).
        assert!(
            signer
                .verify(exp, sig, "videos/7/abc/hls/360p/segment-00001.m4s", NOW)
                .is_ok()
        );
        // Another video, another generation, the past.
        assert_eq!(
            signer.verify(exp, sig, "videos/8/abc/hls/master.m3u8", NOW),
            Err(MediaUrlError::Invalid)
        );
        assert_eq!(
            signer.verify(exp, sig, "videos/7/abd/poster.jpg", NOW),
            Err(MediaUrlError::Invalid)
        );
        assert_eq!(
            signer.verify(exp, sig, path, expires + 1),
            Err(MediaUrlError::Expired)
        );
        // A changed expiry or signature.
        let later = (expires + WINDOW_SECONDS).to_string();
        assert_eq!(
            signer.verify(&later, sig, path, NOW),
            Err(MediaUrlError::Invalid)
        );
        assert_eq!(
            signer.verify(exp, "AAAAAAAAAAAAAAAAAAAAAA", path, NOW),
            Err(MediaUrlError::Invalid)
        );
        // Another server secret.
        assert!(
            MediaSigner::new("other")
                .verify(exp, sig, path, NOW)
                .is_err()
        );
    }

    #[test]
    fn answer_urls_are_what_joining_the_signed_path_to_public_url_gives() {
        let signer = MediaSigner::new("secret");
        let paths = [
            "videos/7/abc/360p.mp4",
            "videos/7/abc/hls/master.m3u8",
            "videos/8/def/poster.jpg",
            "videos/7/abc/thumbs/thumbnails.vtt",
            "videos/7/../x/a.mp4",
            "",
        ];
        for public in [
            "https://videoflix.example/",
            "https://h.example/app/",
            "http://h:8000/a",
        ] {
            let public = url::Url::parse(public).expect("url");
            let base = public.join("media/").expect("base").to_string();
            let urls = signer.urls(&base, NOW);
            for path in paths {
                let joined = signer
                    .sign(path, NOW)
                    .and_then(|signed| public.join(&format!("media/{signed}")).ok())
                    .map(String::from)
                    .unwrap_or_default();
                assert_eq!(urls.url(path), joined, "{public} {path}");
            }
        }
    }

    /// The first, allocating form of [`scope`], kept as its reference.
    fn reference_scope(path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        let plain = |s: &&str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        if segments.len() < 3 || !segments.iter().all(plain) || segments[0] != "videos" {
            return None;
        }
        let end = segments[0].len() + segments[1].len() + segments[2].len() + 2;
        path.get(..end)
    }

    #[test]
    fn the_scope_check_agrees_with_its_reference() {
        let paths = [
            "videos/7/abc/360p.mp4",
            "videos/7/abc",
            "videos/7",
            "videos",
            "",
            "/videos/7/a",
            "videos/7/a/",
            "videos//a/b",
            "videos/7/a//b",
            "videos/7/../b",
            "videos/7/.tmp-x/a",
            "videos/7/a/.hidden",
            "videos/7/a b/c",
            "videos/7/ä/c",
            "Videos/7/a/b",
            "videos/7/a/hls/360p/segment-00001.m4s",
            "incoming/x.part",
        ];
        for path in paths {
            assert_eq!(scope(path), reference_scope(path), "{path:?}");
        }
    }

    #[test]
    fn only_plain_paths_are_signed_or_served() {
        let signer = MediaSigner::new("secret");
        for bad in [
            "videos/7/../../etc/passwd",
            "/videos/7/a/b",
            "videos/7",
            "videos//a/b",
            "incoming/x.part",
            "videos/7/.tmp-x/a.mp4",
            "videos/7/a b/c",
        ] {
            assert_eq!(signer.sign(bad, 1), None, "{bad}");
        }
    }
}
