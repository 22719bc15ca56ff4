//! Host names to registrable domains, by Mozilla's Public Suffix List (the `psl` crate, which
//! is regenerated from the list itself): `www.bbc.co.uk` → `bbc.co.uk`, `user.github.io` →
//! `user.github.io` (github.io is a public suffix: every user's pages are their own site),
//! `a.b.example.com` → `example.com`.
//!
//! Address literals (`192.0.2.1`, `[2001:db8::1]`) and single-label names (`localhost`) are
//! their own domain. A name under a suffix the list does not know (`site.test`) follows the
//! list's default rule: the last label is the suffix.

use std::net::IpAddr;

/// The registrable domain of `host` (lower case, no trailing dot); `host` itself when it has
/// none.
pub fn registrable(host: &str) -> String {
    let host = host.trim_end_matches('.');
    if host.is_empty() || is_address(host) || !host.contains('.') {
        return host.to_string();
    }
    match psl::domain_str(host) {
        Some(d) => d.to_string(),
        // The host is itself a public suffix (`co.uk`, `github.io`).
        None => host.to_string(),
    }
}

fn is_address(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_roll_up_by_the_public_suffix_list() {
        for (host, domain) in [
            ("www.bbc.co.uk", "bbc.co.uk"),
            ("bbc.co.uk", "bbc.co.uk"),
            ("news.bbc.co.uk", "bbc.co.uk"),
            ("octocat.github.io", "octocat.github.io"),
            ("docs.octocat.github.io", "octocat.github.io"),
            ("github.io", "github.io"),
            ("co.uk", "co.uk"),
            ("a.b.example.com", "example.com"),
            ("example.com.", "example.com"),
            ("www.example.test", "example.test"),
            ("foo.s3.amazonaws.com", "foo.s3.amazonaws.com"),
            ("localhost", "localhost"),
            ("192.0.2.1", "192.0.2.1"),
            ("[2001:db8::1]", "[2001:db8::1]"),
            ("", ""),
        ] {
            assert_eq!(registrable(host), domain, "{host}");
        }
    }
}
