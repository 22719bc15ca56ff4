use super::*;
use proptest::prelude::*;
use std::path::PathBuf;

/// `../shared/fixtures/nettop` beside the checkout (CI puts it there), or `NETMON_FIXTURES`.
fn fixture_dir() -> PathBuf {
    let dir = std::env::var_os("NETMON_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/nettop")
        });
    assert!(
        dir.is_dir(),
        "nettop fixtures not found at {}: check out ../shared beside this repository \
         or set NETMON_FIXTURES",
        dir.display()
    );
    dir
}

fn fixture(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn procs(p: &Parsed) -> Vec<(String, u32, u64, u64)> {
    p.blocks
        .iter()
        .flat_map(|b| b.processes.iter())
        .map(|r| (r.name.to_string(), r.pid, r.bytes_in, r.bytes_out))
        .collect()
}

#[test]
fn every_fixture_parses_with_at_least_one_process_and_nothing_unexplained() {
    let mut files: Vec<_> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected the 15 fixture files, found {}",
        files.len()
    );
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        let parsed = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let n: usize = parsed.blocks.iter().map(|b| b.processes.len()).sum();
        assert!(n > 0, "{}: no process rows", path.display());
        // Only the known quirks may be skipped: rows before the first header of a stream
        // joined part-way through, and a last line cut off by a killed stream.
        for s in &parsed.skipped {
            assert!(
                s.reason == "row before any usable header" || s.reason == "incomplete last line",
                "{}: unexpected skip {s}",
                path.display()
            );
        }
    }
}

#[test]
fn verbatim_capture_process_rows_equal_the_sum_of_their_connections() {
    // FORMAT.md §6: 27 of 27 processes match in this capture (checked by a script there).
    let text = fixture("L1_J_bytes_in_bytes_out_interface_state_time.csv");
    let parsed = parse(&text).expect("parse");
    assert_eq!(parsed.blocks.len(), 1);
    let b = &parsed.blocks[0];
    assert_eq!(b.processes.len(), 27);
    for p in &b.processes {
        let sum_in: u64 = p.connections.iter().filter_map(|c| c.bytes_in).sum();
        let sum_out: u64 = p.connections.iter().filter_map(|c| c.bytes_out).sum();
        assert_eq!(
            (p.bytes_in, p.bytes_out),
            (sum_in, sum_out),
            "{}.{}",
            p.name,
            p.pid
        );
    }
    assert!(parsed.skipped.is_empty());
}

#[test]
fn header_repeats_per_sample_and_blocks_split_there() {
    let text = fixture("P_x_L2_s2_J_bytes_in_bytes_out.csv");
    let parsed = parse(&text).expect("parse");
    assert_eq!(parsed.blocks.len(), 2);
    // configd appears only in block 2, first row.
    assert!(
        !parsed.blocks[0]
            .processes
            .iter()
            .any(|p| p.name == "configd")
    );
    assert_eq!(parsed.blocks[1].processes[0].name, "configd");
}

#[test]
fn counters_above_two_to_the_32_are_kept_exactly() {
    let text = fixture("P_x_L2_s2_J_bytes_in_bytes_out.csv");
    let parsed = parse(&text).expect("parse");
    assert!(
        procs(&parsed)
            .iter()
            .any(|p| p.0 == "mDNSResponder" && p.2 == 9_631_465_568)
    );
}

#[test]
fn names_with_dots_digits_spaces_and_parentheses_split_at_the_last_dot() {
    let text = fixture("P_x_L2_s2_J_bytes_in_bytes_out.csv");
    let parsed = parse(&text).expect("parse");
    let names: Vec<_> = procs(&parsed).into_iter().map(|p| (p.0, p.1)).collect();
    assert!(names.contains(&("2.1.258".to_string(), 60633)));
    assert!(names.contains(&("com.apple.WebKi".to_string(), 13595)));
    assert!(names.iter().any(|n| n.0 == "Slack Helper"));
    assert!(names.iter().any(|n| n.0 == "OpenVPN Connect"));
    let p = parse(",bytes_in,bytes_out,\nCodex (Service).65506,1,2,\n").expect("parse");
    assert_eq!(procs(&p), vec![("Codex (Service)".into(), 65506, 1, 2)]);
}

#[test]
fn a_name_cut_to_end_in_a_space_keeps_its_space() {
    let p = parse(",bytes_in,bytes_out,\nMicrosoft Edge .772,13530917,11022,\n").expect("parse");
    assert_eq!(procs(&p)[0].0, "Microsoft Edge ");
}

#[test]
fn pid_zero_kernel_task_is_a_valid_row() {
    let p = parse(",bytes_in,bytes_out,\nkernel_task.0,0,0,\n").expect("parse");
    assert_eq!(procs(&p), vec![("kernel_task".into(), 0, 0, 0)]);
}

#[test]
fn a_comma_in_a_name_is_given_back_to_the_name() {
    let text = fixture("synthetic_HYPOTHETICAL_comma_in_name.csv");
    let parsed = parse(&text).expect("parse");
    assert_eq!(
        procs(&parsed),
        vec![("weird,name".into(), 55, 7, 8), ("good".into(), 99, 1, 2)]
    );
}

#[test]
fn columns_are_found_by_header_name_not_position() {
    // time first, identifier second (FORMAT.md §3).
    let p =
        parse("time,,interface,state,bytes_in,bytes_out,\n10:00:00.1,a.1,,,5,6,\n").expect("parse");
    assert_eq!(procs(&p), vec![("a".into(), 1, 5, 6)]);
    // bytes_out before bytes_in would still be read by name.
    let p = parse(",bytes_out,bytes_in,\na.1,6,5,\n").expect("parse");
    assert_eq!(procs(&p), vec![("a".into(), 1, 5, 6)]);
    // The full default 19-field set with -k state,interface.
    let text = fixture("P_L1_k_state_interface.csv");
    let parsed = parse(&text).expect("parse");
    assert!(procs(&parsed).iter().any(|p| p.0 == "launchd" && p.1 == 1));
}

#[test]
fn crlf_and_rows_before_the_first_header_are_handled() {
    let text = fixture("synthetic_P_x_L0_J_bytes_in_bytes_out__pty_crlf.csv");
    let parsed = parse(&text).expect("parse");
    assert_eq!(parsed.blocks.len(), 2);
    assert!(
        parsed
            .skipped
            .iter()
            .all(|s| s.reason == "row before any usable header")
    );
    assert!(!parsed.skipped.is_empty());
    assert!(procs(&parsed).iter().all(|p| !p.0.ends_with('\r')));
}

#[test]
fn control_characters_before_a_header_are_stripped() {
    let p = parse("\u{4}\u{8}\u{8},bytes_in,bytes_out,\na.1,1,2,\n").expect("parse");
    assert_eq!(procs(&p), vec![("a".into(), 1, 1, 2)]);
}

#[test]
fn a_stream_cut_in_the_middle_of_a_row_drops_only_that_row() {
    let text = fixture("synthetic_P_x_L0_J_bytes_in_bytes_out__stream_quirks.csv");
    let parsed = parse(&text).expect("parse");
    assert_eq!(parsed.blocks.len(), 4);
    let last = parsed.skipped.last().expect("the cut row");
    assert_eq!(last.reason, "incomplete last line");
    assert!(last.excerpt.starts_with("Google Chrome H.74297,56"));
    // The row before the cut survives.
    assert!(
        parsed.blocks[3]
            .processes
            .iter()
            .any(|p| p.name == "mDNSResponder")
    );
    assert!(
        !parsed.blocks[3]
            .processes
            .iter()
            .any(|p| p.name == "Google Chrome H")
    );
}

#[test]
fn a_truncated_row_that_still_ends_in_a_comma_is_not_mistaken_for_complete() {
    // Cut after a comma but before the last field: field count no longer matches.
    let p = parse(",bytes_in,bytes_out,\na.1,5,\n").expect("parse");
    assert!(procs(&p).is_empty());
    assert_eq!(p.skipped[0].reason, "row has fewer fields than its header");
}

#[test]
fn connection_rows_attach_to_their_process_with_ipv4_ipv6_and_wildcards() {
    let text = fixture("synthetic_L1_J_bytes_in_bytes_out_interface_state_time__connections.csv");
    let parsed = parse(&text).expect("parse");
    let b = &parsed.blocks[0];
    let edge = b
        .processes
        .iter()
        .find(|p| p.name == "Microsoft Edge ")
        .expect("edge");
    let v6 = &edge.connections[0];
    assert_eq!(v6.proto, "tcp6");
    assert_eq!(v6.remote.host.as_deref(), Some("2001:db8:a41:880::13"));
    assert_eq!(v6.remote.port, Some(443));
    assert_eq!(v6.local.port, Some(60979));
    assert_eq!((v6.bytes_in, v6.bytes_out), (Some(12000), Some(9100)));
    let mdns = b
        .processes
        .iter()
        .find(|p| p.name == "mDNSResponder")
        .expect("mdns");
    let scoped = mdns
        .connections
        .iter()
        .find(|c| c.ident.contains("fe80::1%lo0"))
        .expect("scoped");
    assert_eq!(scoped.local.host.as_deref(), Some("fe80::1%lo0"));
    assert_eq!(scoped.local.port, Some(53));
    assert_eq!(
        scoped.remote,
        Endpoint {
            host: None,
            port: None
        }
    );
    let listener = mdns
        .connections
        .iter()
        .find(|c| c.state == Some("Listen"))
        .expect("listen");
    assert_eq!((listener.bytes_in, listener.bytes_out), (None, None));
    for p in &b.processes {
        let sum: u64 = p.connections.iter().filter_map(|c| c.bytes_in).sum();
        assert_eq!(sum, p.bytes_in, "{}", p.name);
    }
}

#[test]
fn host_names_in_endpoints_without_dash_n() {
    let text = fixture("x_L0_s1_J_interface_state_bytes_in_bytes_out__pty_trimmed.csv");
    let parsed = parse(&text).expect("parse");
    let all: Vec<_> = parsed
        .blocks
        .iter()
        .flat_map(|b| &b.processes)
        .flat_map(|p| &p.connections)
        .collect();
    assert!(
        all.iter()
            .any(|c| c.remote.host.as_deref() == Some("localhost") && c.remote.port == Some(54968))
    );
}

#[test]
fn endpoints_parse_in_every_observed_shape() {
    let e = |s: &str| parse_endpoint(s).map(|e| (e.host.map(Cow::into_owned), e.port));
    assert_eq!(
        e("198.18.0.1:65333"),
        Some((Some("198.18.0.1".into()), Some(65333)))
    );
    assert_eq!(
        e("one.one.one.one:443"),
        Some((Some("one.one.one.one".into()), Some(443)))
    );
    assert_eq!(e("*:*"), Some((None, None)));
    assert_eq!(e("*.*"), Some((None, None)));
    assert_eq!(e("*:5353"), Some((None, Some(5353))));
    assert_eq!(e("*.5353"), Some((None, Some(5353))));
    assert_eq!(
        e("2001:db8:1540::4ad7.60979"),
        Some((Some("2001:db8:1540::4ad7".into()), Some(60979)))
    );
    assert_eq!(
        e("fe80::7ca2:20ff:fe4d:277%awdl0.52214"),
        Some((Some("fe80::7ca2:20ff:fe4d:277%awdl0".into()), Some(52214)))
    );
    assert_eq!(
        e("::ffff:192.0.2.1.443"),
        Some((Some("::ffff:192.0.2.1".into()), Some(443)))
    );
    assert_eq!(e("garbage"), None);
    assert_eq!(e("1.2.3.4:99999999"), None);
}

#[test]
fn space_padded_fields_and_indented_connection_rows_parse_like_plain_csv() {
    // Issue 14: output quoted with the alignment of a terminal (indented connection rows,
    // blanks around names and numbers) must read exactly as the plain form.
    let padded = "time,              , interface,       state,   bytes_in,  bytes_out,  \n\
                  00:34:29.230857,mDNSResponder.690  ,       ,            , 49631891,   34126347,\n\
                  \t   00:34:29.201120,   udp4 *:5353<->*:*  ,  en0 ,           ,  24743335 , 16720863 ,\n\
                  00:34:29.202603,    udp6 *.5353<->*.*, awdl0,  ,23966085,17041546,   \n\
                  00:34:29.230870,Microsoft Edge .772,,,0,0,\n\
                  00:34:29.230871,  tcp4   192.0.2.1:5000<->198.51.100.1:443 ,  en0, Established ,  10 ,  20,\n";
    let plain = "time,,interface,state,bytes_in,bytes_out,\n\
                 00:34:29.230857,mDNSResponder.690,,,49631891,34126347,\n\
                 00:34:29.201120,udp4 *:5353<->*:*,en0,,24743335,16720863,\n\
                 00:34:29.202603,udp6 *.5353<->*.*,awdl0,,23966085,17041546,\n\
                 00:34:29.230870,Microsoft Edge .772,,,0,0,\n\
                 00:34:29.230871,tcp4 192.0.2.1:5000<->198.51.100.1:443,en0,Established,10,20,\n";
    let (a, b) = (parse(padded).expect("padded"), parse(plain).expect("plain"));
    assert!(a.skipped.is_empty(), "{:?}", a.skipped);
    assert_eq!(procs(&a), procs(&b));
    let conns = |p: &Parsed| -> Vec<String> {
        p.blocks[0]
            .processes
            .iter()
            .flat_map(|r| r.connections.iter())
            .map(|c| {
                format!(
                    "{} {:?} {:?} {:?} {:?} {:?} {:?}",
                    c.proto, c.local, c.remote, c.interface, c.state, c.bytes_in, c.bytes_out
                )
            })
            .collect()
    };
    assert_eq!(conns(&a), conns(&b));
    assert_eq!(
        a.blocks[0].processes[1].name, "Microsoft Edge ",
        "the space inside a cut name stays"
    );
}

#[test]
fn usage_text_on_stdout_is_no_header() {
    let err = parse("nettop: illegal option -- q\nusage: nettop [-ncd] [-m <mode>]\n")
        .expect_err("no header");
    assert!(matches!(err, ParseError::NoHeader { .. }));
    assert!(matches!(parse(""), Err(ParseError::NoHeader { .. })));
}

#[test]
fn a_header_without_byte_columns_is_refused_by_name() {
    let err = parse("time,,packets_in,packets_out,\n1,a.1,2,3,\n").expect_err("no bytes");
    assert!(matches!(err, ParseError::MissingByteColumns { .. }));
}

#[test]
fn garbage_lines_are_skipped_with_their_line_numbers() {
    let p = parse(",bytes_in,bytes_out,\na.1,1,2,\n%%%garbage%%%\nb.2,1.5 MiB,3,\nc.3,4,5,\n")
        .expect("parse");
    assert_eq!(procs(&p).len(), 2);
    let lines: Vec<_> = p.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![3, 4]);
}

#[test]
fn connection_row_before_any_process_is_skipped() {
    let p = parse(
        ",interface,state,bytes_in,bytes_out,\ntcp4 1.2.3.4:1<->5.6.7.8:2,en0,Established,1,1,\n",
    )
    .expect("parse");
    assert_eq!(p.skipped[0].reason, "connection row before any process");
}

/// Each process of the last block with how many connection rows it was given.
fn owned(p: &Parsed) -> Vec<(String, usize)> {
    p.blocks
        .last()
        .map(|b| {
            b.processes
                .iter()
                .map(|p| (p.name.to_string(), p.connections.len()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn connections_under_an_unreadable_process_row_are_not_given_to_the_one_above() {
    let p = parse(
        ",interface,state,bytes_in,bytes_out,\n\
         Safari.10,,,5,5,\n\
         tcp4 192.0.2.1:50000<->198.51.100.1:443,en0,Established,5,5,\n\
         bad row no pid,,,1000,10,\n\
         tcp4 192.0.2.1:50001<->198.51.100.2:443,en0,Established,1000,10,\n\
         curl.11,,,7,7,\n\
         tcp4 192.0.2.1:50002<->198.51.100.3:443,en0,Established,7,7,\n",
    )
    .expect("parse");
    assert_eq!(
        owned(&p),
        vec![("Safari".to_string(), 1), ("curl".to_string(), 1)]
    );
    let skipped: Vec<(usize, &str)> = p.skipped.iter().map(|s| (s.line, s.reason)).collect();
    assert_eq!(
        skipped,
        vec![
            (4, "identifier is neither name.pid nor a connection"),
            (
                5,
                "connection row under a process row that could not be read"
            ),
        ]
    );
}

#[test]
fn a_connection_row_with_unreadable_endpoints_is_skipped_not_read_as_a_process() {
    let p = parse(
        ",interface,state,bytes_in,bytes_out,\n\
         Safari.10,,,5,5,\n\
         tcp6 2001:db8::1.99999<->2001:db8::2.443,en0,Established,5,5,\n\
         tcp4 192.0.2.1:50000<->198.51.100.1:443,en0,Established,9,9,\n",
    )
    .expect("parse");
    assert_eq!(owned(&p), vec![("Safari".to_string(), 1)]);
    assert_eq!(
        p.skipped[0].reason,
        "connection row whose endpoints cannot be read"
    );
}

#[test]
fn delta_mode_blocks_parse_like_any_other() {
    let text = fixture("synthetic_P_d_L3_s1_J_time_bytes_in_bytes_out__delta_midnight.csv");
    let parsed = parse(&text).expect("parse");
    assert_eq!(parsed.blocks.len(), 3);
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC*") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_nettop_shaped_noise(
        lines in proptest::collection::vec(
            prop_oneof![
                Just(",bytes_in,bytes_out,".to_string()),
                Just("time,,interface,state,bytes_in,bytes_out,".to_string()),
                "[a-zA-Z .()]{0,16}\\.[0-9]{0,7},[0-9]{0,21},[0-9]{0,21},",
                "(tcp|udp|quic)[46] [0-9a-f.:*%]{0,20}<->[0-9a-f.:*%]{0,20},[a-z0-9]{0,4},[A-Za-z]{0,9},[0-9]{0,6},[0-9]{0,6},",
                "[ -~]{0,40}",
            ],
            0..30,
        ),
        crlf in any::<bool>(),
        cut in any::<bool>(),
    ) {
        let mut text = lines.join(if crlf { "\r\n" } else { "\n" });
        if !cut { text.push('\n'); }
        if let Ok(p) = parse(&text) {
            for b in &p.blocks {
                for r in &b.processes {
                    prop_assert!(!r.name.is_empty());
                }
            }
        }
    }
}
