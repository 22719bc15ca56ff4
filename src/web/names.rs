//! Which application a browser is: matching the name a heartbeat gives ("Firefox", "Google
//! Chrome", "Zen") to the application names netmon records ("firefox-esr" on Debian, "Google
//! Chrome" on macOS, "chromium", "msedge").
//!
//! Both sides are reduced to a canonical key: lower case, letters and digits only, with the
//! vendor, channel and packaging words dropped ("Google Chrome Beta", "google-chrome-stable"
//! and "chrome" are all `chrome`; "Firefox Developer Edition" and "firefox-esr" are `firefox`;
//! "Brave Browser" and "brave" are `brave`; "msedge" and "Microsoft Edge" are `edge`). Two
//! names match when their keys are equal. Chromium-based browsers cannot always tell
//! themselves apart and may all say "Chrome": the extension's options page lets the user name
//! the browser, and that name is matched the same way.

/// Words that name a vendor, a release channel or a packaging, never the browser itself.
const NOISE: &[&str] = &[
    "google",
    "microsoft",
    "mozilla",
    "browser",
    "bin",
    "esr",
    "stable",
    "beta",
    "dev",
    "developer",
    "edition",
    "nightly",
    "canary",
    "unstable",
    "app",
    "wrapper",
];

/// Executable names that spell the browser differently from its product name.
const ALIASES: &[(&str, &str)] = &[("msedge", "edge"), ("firefoxbin", "firefox")];

/// The key two names must share to be the same browser.
pub fn canonical(name: &str) -> String {
    let lower = name.to_lowercase();
    let tokens: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    let kept: String = tokens
        .iter()
        .filter(|t| !NOISE.contains(t))
        .copied()
        .collect();
    let key = if kept.is_empty() {
        tokens.concat()
    } else {
        kept
    };
    ALIASES
        .iter()
        .find(|(from, _)| *from == key)
        .map_or(key, |(_, to)| (*to).to_string())
}

/// Whether the browser a heartbeat names is this application.
pub fn same_browser(browser: &str, app_name: &str) -> bool {
    let b = canonical(browser);
    !b.is_empty() && b == canonical(app_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_names_match_their_executables_on_every_os() {
        for (browser, app) in [
            ("Firefox", "firefox"),
            ("Firefox", "firefox-esr"),
            ("Firefox", "firefox-bin"),
            ("Firefox", "Firefox"),
            ("Firefox Developer Edition", "firefox"),
            ("Firefox Nightly", "Firefox Nightly"),
            ("Zen", "zen"),
            ("Zen", "zen-bin"),
            ("Zen", "Zen Browser"),
            ("Google Chrome", "chrome"),
            ("Google Chrome", "google-chrome-stable"),
            ("Chrome", "Google Chrome"),
            ("Chromium", "chromium"),
            ("Chromium", "chromium-browser"),
            ("Microsoft Edge", "msedge"),
            ("Microsoft Edge", "Microsoft Edge"),
            ("Brave Browser", "brave"),
            ("Brave Browser", "Brave Browser"),
            ("Vivaldi", "vivaldi-bin"),
            ("Safari", "Safari"),
        ] {
            assert!(same_browser(browser, app), "{browser} ~ {app}");
        }
    }

    #[test]
    fn different_browsers_do_not_match() {
        for (browser, app) in [
            ("Chrome", "chromium"),
            ("Chrome", "Brave Browser"),
            ("Firefox", "Zen"),
            ("Edge", "chrome"),
            ("Safari", "Safari Technology Preview"),
            ("", ""),
            ("Firefox", "curl"),
        ] {
            assert!(!same_browser(browser, app), "{browser} !~ {app}");
        }
    }

    #[test]
    fn a_name_made_only_of_noise_words_keeps_them() {
        assert_eq!(canonical("Browser"), "browser");
        assert_eq!(canonical("  "), "");
    }
}
