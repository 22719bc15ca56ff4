//! From the kernel's `tcp_info` counters to payload bytes.
//!
//! `tcpi_bytes_acked` counts every sequence number the peer acknowledged, so it includes the
//! SYN (on the side that called connect(), not on an accepted socket) and our FIN;
//! `tcpi_bytes_received` includes the peer's FIN. nettop, the ebpf source and the bytes a
//! program passes to send()/recv() count neither, and an idle connection must show 0, so:
//!
//! - **sent** = `min(bytes_acked, max(bytes_sent - bytes_retrans, bytes_acked - 2))`. The
//!   first term of the max is the payload handed to the network once (Linux 4.19+); the SYN
//!   and FIN are not in it, so once everything is acknowledged the min is exactly the payload,
//!   on either side of the connection. While data is in flight it is the acknowledged payload,
//!   one byte high on the connecting side (its SYN). The `bytes_acked - 2` floor keeps a
//!   retransmission whose send failed (counted as retransmitted but never as sent) from
//!   lowering the figure by more than the two sequence numbers a connection can add.
//! - **received** = `bytes_received`, minus one when the peer's FIN is in it: the states after
//!   a FIN was received (CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT) tell for a live socket; a
//!   socket reported by its destroy notification is always in CLOSE, and then a FIN is assumed
//!   when anything was received. That is one byte short for a connection that received data
//!   but no FIN: an aborted one, or one closed first by this side whose socket the kernel
//!   retired to a timewait entry in FIN_WAIT2, before the peer's FIN (the shared testbed's
//!   200 short connections came out 5 bytes short of 10,000,000 received).
//!
//! The caller keeps each socket's figures monotonic ([`Monotonic`]): a cumulative counter that
//! went down would be taken for a new counter and counted again.

/// TCP states (include/net/tcp_states.h), the whole table for reference.
#[allow(dead_code)]
pub mod state {
    pub const ESTABLISHED: u8 = 1;
    pub const SYN_SENT: u8 = 2;
    pub const SYN_RECV: u8 = 3;
    pub const FIN_WAIT1: u8 = 4;
    pub const FIN_WAIT2: u8 = 5;
    pub const TIME_WAIT: u8 = 6;
    pub const CLOSE: u8 = 7;
    pub const CLOSE_WAIT: u8 = 8;
    pub const LAST_ACK: u8 = 9;
    pub const LISTEN: u8 = 10;
    pub const CLOSING: u8 = 11;
    pub const NEW_SYN_RECV: u8 = 12;
}

/// The `struct tcp_info` fields netmon reads, at their offsets in the kernel's UAPI layout
/// (include/uapi/linux/tcp.h), which only ever grows at the end.
const BYTES_ACKED: usize = 120; // Linux 4.1
const BYTES_RECEIVED: usize = 128; // Linux 4.1
const BYTES_SENT: usize = 200; // Linux 4.19
const BYTES_RETRANS: usize = 208; // Linux 4.19

/// The byte counters of one TCP socket, as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpCounters {
    pub bytes_acked: u64,
    pub bytes_received: u64,
    /// `bytes_sent - bytes_retrans`: payload sent once; `None` before Linux 4.19.
    pub sent_once: Option<u64>,
}

fn u64_at(raw: &[u8], off: usize) -> Option<u64> {
    let b = raw.get(off..off + 8)?;
    Some(u64::from_ne_bytes(b.try_into().ok()?))
}

/// Read the counters out of an `INET_DIAG_INFO` attribute; `None` when it is too short to
/// hold even `bytes_received` (a kernel older than 4.1).
pub fn parse_tcp_info(raw: &[u8]) -> Option<TcpCounters> {
    let bytes_acked = u64_at(raw, BYTES_ACKED)?;
    let bytes_received = u64_at(raw, BYTES_RECEIVED)?;
    let sent_once = match (u64_at(raw, BYTES_SENT), u64_at(raw, BYTES_RETRANS)) {
        (Some(s), Some(r)) => Some(s.saturating_sub(r)),
        _ => None,
    };
    Some(TcpCounters {
        bytes_acked,
        bytes_received,
        sent_once,
    })
}

/// Payload bytes `(received, sent)` of a socket in `tcp_state`; `closed` when the figures come
/// from its destroy notification.
pub fn payload(c: &TcpCounters, tcp_state: u8, closed: bool) -> (u64, u64) {
    let floor = c.bytes_acked.saturating_sub(2);
    let sent = match c.sent_once {
        Some(once) => c.bytes_acked.min(once.max(floor)),
        // Before 4.19 the SYN and FIN cannot be told apart from payload: take the SYN off.
        None => c.bytes_acked.saturating_sub(1),
    };
    let fin_received = if closed {
        c.bytes_received > 0
    } else {
        matches!(
            tcp_state,
            state::CLOSE_WAIT | state::LAST_ACK | state::CLOSING | state::TIME_WAIT
        )
    };
    let received = c.bytes_received.saturating_sub(u64::from(fin_received));
    (received, sent)
}

/// The last figures reported for one socket: what is reported never goes down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Monotonic {
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Monotonic {
    /// Take a new reading; returns the figures to report.
    pub fn update(&mut self, bytes_in: u64, bytes_out: u64) -> (u64, u64) {
        self.bytes_in = self.bytes_in.max(bytes_in);
        self.bytes_out = self.bytes_out.max(bytes_out);
        (self.bytes_in, self.bytes_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(acked: u64, received: u64, sent: u64, retrans: u64) -> TcpCounters {
        TcpCounters {
            bytes_acked: acked,
            bytes_received: received,
            sent_once: Some(sent - retrans),
        }
    }

    #[test]
    fn an_idle_connection_shows_zero_on_both_sides_while_open_and_after_close() {
        // Measured with ss: the connecting side's SYN is acked (1), the accepting side's is not.
        assert_eq!(payload(&c(1, 0, 0, 0), state::ESTABLISHED, false), (0, 0));
        assert_eq!(payload(&c(0, 0, 0, 0), state::ESTABLISHED, false), (0, 0));
        // Both FINs exchanged: SYN + FIN acked, the peer's FIN received.
        assert_eq!(payload(&c(2, 1, 0, 0), state::CLOSE, true), (0, 0));
        assert_eq!(payload(&c(1, 1, 0, 0), state::CLOSE, true), (0, 0));
    }

    #[test]
    fn payload_is_exact_on_both_sides_once_everything_is_acknowledged() {
        // RESULTS.md section 1: 1,000,024 B up and 300,000 B down, then closed.
        assert_eq!(
            payload(&c(1_000_026, 300_001, 1_000_024, 0), state::CLOSE, true),
            (300_000, 1_000_024)
        );
        // The same seen from the accepting side (no SYN in bytes_acked).
        assert_eq!(
            payload(&c(300_001, 1_000_025, 300_000, 0), state::CLOSE, true),
            (1_000_024, 300_000)
        );
        // Measured with ss: the client sent FIN, the server is in CLOSE_WAIT.
        assert_eq!(
            payload(&c(500, 1001, 500, 0), state::CLOSE_WAIT, false),
            (1000, 500)
        );
        assert_eq!(
            payload(&c(1002, 500, 1000, 0), state::FIN_WAIT2, false),
            (500, 1000)
        );
    }

    #[test]
    fn retransmissions_are_not_counted_twice() {
        assert_eq!(
            payload(&c(10_001, 0, 13_000, 3_000), state::ESTABLISHED, false),
            (0, 10_000)
        );
    }

    #[test]
    fn in_flight_data_counts_only_what_was_acknowledged() {
        // 4,000 sent, 2,000 acknowledged (+ SYN).
        assert_eq!(
            payload(&c(2_001, 0, 4_000, 0), state::ESTABLISHED, false),
            (0, 2_001)
        );
    }

    #[test]
    fn a_failed_retransmission_costs_at_most_two_bytes() {
        // bytes_retrans counted 1,448 that bytes_sent never saw.
        assert_eq!(
            payload(&c(10_002, 0, 10_000, 1_448), state::CLOSE, true),
            (0, 10_000)
        );
    }

    #[test]
    fn an_old_kernel_without_bytes_sent_loses_only_the_syn() {
        let old = TcpCounters {
            bytes_acked: 101,
            bytes_received: 0,
            sent_once: None,
        };
        assert_eq!(payload(&old, state::ESTABLISHED, false), (0, 100));
    }

    #[test]
    fn tcp_info_fields_are_read_at_their_uapi_offsets() {
        let mut raw = vec![0u8; 232];
        raw[120..128].copy_from_slice(&7u64.to_ne_bytes());
        raw[128..136].copy_from_slice(&8u64.to_ne_bytes());
        raw[200..208].copy_from_slice(&20u64.to_ne_bytes());
        raw[208..216].copy_from_slice(&5u64.to_ne_bytes());
        assert_eq!(
            parse_tcp_info(&raw),
            Some(TcpCounters {
                bytes_acked: 7,
                bytes_received: 8,
                sent_once: Some(15)
            })
        );
        assert_eq!(parse_tcp_info(&raw[..192]).map(|c| c.sent_once), Some(None));
        assert_eq!(parse_tcp_info(&raw[..130]), None);
        assert_eq!(parse_tcp_info(&[]), None);
    }

    #[test]
    fn reported_figures_never_go_down() {
        let mut m = Monotonic::default();
        assert_eq!(m.update(1000, 10), (1000, 10));
        // The destroy notification of an aborted connection assumes a FIN it did not get.
        assert_eq!(m.update(999, 12), (1000, 12));
    }
}
