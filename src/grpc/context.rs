//! What a request carries besides its message: the caller's token and address.

use std::net::IpAddr;

use tonic::metadata::MetadataMap;

use crate::{error::AppError, service::ClientInfo};

/// The access token from `authorization: Bearer <t>` (or the legacy `Token <t>`).
pub(crate) fn bearer(metadata: &MetadataMap) -> Result<&str, AppError> {
    let value = metadata
        .get("authorization")
        .ok_or(AppError::Unauthenticated(
            "Authentication credentials were not provided.",
        ))?
        .to_str()
        .map_err(|_| AppError::Unauthenticated("The authorization header is malformed."))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(AppError::Unauthenticated(
            "The authorization header is malformed.",
        ))?;
    let token = token.trim();
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        || token.is_empty()
    {
        return Err(AppError::Unauthenticated(
            "The authorization header is malformed.",
        ));
    }
    Ok(token)
}

/// The client's address: the peer, or, when a proxy is trusted, the right-most
/// `X-Forwarded-For` entry across all its header lines — the one our proxy appended (HAProxy's
/// `option forwardfor` adds a line of its own). Entries to its left come from the client and
/// can be forged.
pub(crate) fn client<T>(request: &tonic::Request<T>, trust_proxy: bool) -> ClientInfo {
    client_of(request.metadata(), request.remote_addr(), trust_proxy)
}

/// [`client`] from a request's metadata and peer.
pub(crate) fn client_of(
    metadata: &MetadataMap,
    peer: Option<std::net::SocketAddr>,
    trust_proxy: bool,
) -> ClientInfo {
    let forwarded = trust_proxy
        .then(|| {
            metadata
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|line| line.split(','))
                .map(str::trim)
                .rfind(|entry| !entry.is_empty())
        })
        .flatten()
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    ClientInfo {
        ip: forwarded.or_else(|| peer.map(|a| a.ip())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(value: &str) -> MetadataMap {
        let mut md = MetadataMap::new();
        if let Ok(v) = value.parse() {
            md.insert("authorization", v);
        }
        md
    }

    #[test]
    fn bearer_and_token_schemes_are_accepted() {
        assert_eq!(bearer(&md("Bearer abc")).ok(), Some("abc"));
        assert_eq!(bearer(&md("Token abc")).ok(), Some("abc"));
        assert_eq!(bearer(&md("token  abc ")).ok(), Some("abc"));
    }

    #[test]
    fn the_right_most_forwarded_entry_of_all_lines_is_the_client() {
        let mut request = tonic::Request::new(());
        let md = request.metadata_mut();
        md.append(
            "x-forwarded-for",
            "6.6.6.6, 7.7.7.7".parse().expect("ascii"),
        );
        md.append("x-forwarded-for", "10.1.1.1".parse().expect("ascii"));
        assert_eq!(client(&request, true).ip, Some(IpAddr::from([10, 1, 1, 1])));
        assert_eq!(client(&request, false).ip, None, "untrusted: the peer only");
    }

    #[test]
    fn malformed_headers_are_unauthenticated() {
        for v in ["", "Bearer", "Bearer ", "Basic abc", "abc"] {
            assert!(
                matches!(bearer(&md(v)), Err(AppError::Unauthenticated(_))),
                "{v:?}"
            );
        }
        assert!(bearer(&MetadataMap::new()).is_err());
    }
}
