//! Linux kernel sources, and how `--source auto` picks one on Linux.
//!
//! - `sockdiag`: TCP byte counters per connection from NETLINK_SOCK_DIAG, no privileges
//!   needed; connections that close between two ticks are taken from the socket-destroy
//!   notifications. UDP is not counted.
//! - `ebpf`: per-process TCP and UDP payload bytes from kernel tracepoints (root, or CAP_BPF +
//!   CAP_PERFMON).
//!
//! `auto` prefers ebpf when this netmon has it and the kernel lets this user load it, and
//! falls back to sockdiag otherwise, saying why in the run's notes.

pub mod ebpf;
pub mod sockdiag;

use super::{Error, Source, SourceOptions};

/// Why UDP is not counted when sockdiag was asked for by name.
const UDP_NOTE_EXPLICIT: &str = "UDP, so QUIC and HTTP/3 too: sock_diag has no UDP byte counters; \
--source ebpf counts it (root, or CAP_BPF + CAP_PERFMON)";

/// The sockdiag source, asked for by name.
pub fn sockdiag(opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    Ok(Box::new(sockdiag::SockdiagSource::new(
        opts,
        UDP_NOTE_EXPLICIT.to_string(),
    )?))
}

/// The ebpf source, asked for by name.
pub fn ebpf(opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    open_ebpf(opts)
}

/// The best source this user may use here: ebpf, else sockdiag with the reason.
pub fn auto(opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    let why = match open_ebpf(opts) {
        Ok(source) => return Ok(source),
        Err(Error::Unavailable(why)) => why,
        Err(other) => other.to_string(),
    };
    let note = format!(
        "UDP, so QUIC and HTTP/3 too: the ebpf source, which counts it, is not in use: {why}"
    );
    Ok(Box::new(sockdiag::SockdiagSource::new(opts, note)?))
}

/// The ebpf source: `Error::Unavailable(reason)` when it cannot run here.
fn open_ebpf(opts: &SourceOptions) -> Result<Box<dyn Source>, Error> {
    ebpf::EbpfSource::new(opts).map(|s| Box::new(s) as Box<dyn Source>)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceKind;
    use std::time::Duration;

    fn opts() -> SourceOptions {
        SourceOptions {
            sample_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn auto_falls_back_to_sockdiag_and_says_why_udp_is_not_counted() {
        let source = auto(&opts()).expect("a source");
        let why = match open_ebpf(&opts()) {
            Ok(_) => return, // the ebpf source runs here: auto took it
            Err(e) => match e {
                Error::Unavailable(why) => why,
                other => other.to_string(),
            },
        };
        assert_eq!(source.kind(), SourceKind::Sockdiag);
        let notes = source.blind_spots();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("UDP") && n.contains(&why)),
            "{notes:?}"
        );
    }

    #[test]
    fn sockdiag_by_name_says_which_source_counts_udp() {
        let notes = sockdiag(&opts()).expect("sockdiag").blind_spots();
        assert!(
            notes.iter().any(|n| n.contains("--source ebpf")),
            "{notes:?}"
        );
        assert!(notes.iter().any(|n| n.contains("network namespaces")));
    }
}
