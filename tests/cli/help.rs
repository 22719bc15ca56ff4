//! `--help` of the query subcommands, pinned: it is where users learn the defaults, units and
//! formats, so a change to it should be a reviewed change.

use crate::util::Env;

fn help(sub: &str) -> String {
    let out = Env::new()
        .netmon()
        .env("COLUMNS", "100")
        .env_remove("NETMON_DB")
        .args([sub, "--help"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn query_subcommands_state_their_default_range_units_and_formats() {
    for sub in ["apps", "timeline", "top", "domains"] {
        let text = help(sub);
        assert!(text.contains("1000 kB"), "{sub}: the unit convention");
        insta::assert_snapshot!(format!("help_{sub}"), text);
    }
    for sub in ["apps", "timeline", "domains"] {
        assert!(
            help(sub).contains("last 24 hours"),
            "{sub}: the default range"
        );
    }
}

#[test]
fn serve_help_states_its_address_token_and_loopback_rule() {
    let text = help("serve");
    assert!(text.contains("127.0.0.1:7500") && text.contains("--print-token"));
    assert!(text.contains("--allow-remote"));
    assert!(text.contains("GET /metrics") && text.contains("--print-metrics-token"));
    insta::assert_snapshot!("help_serve", text);
}
