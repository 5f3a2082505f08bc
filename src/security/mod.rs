//! Credentials: argon2id password hashing off the async executor, JWT access tokens, opaque
//! refresh tokens, and the signed single-use tokens in e-mailed links.

mod hashing;
mod media_urls;
mod tokens;

pub use hashing::Hasher;
pub use media_urls::{AnswerUrls, MediaSigner, MediaUrlError, unix_now};
pub use tokens::{AccessClaims, LinkPurpose, Tokens, hash_refresh_token, new_refresh_token};
