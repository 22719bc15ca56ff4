//! The nettop output the record and nettop_path benchmarks replay: 300 processes with two
//! connections each, either every counter growing every tick ("busy", `every` = 1) or one
//! connection in `every` (12: about 50 a tick, "typical"), or none (`every` = 0, "idle").

/// `steps` samples of `nettop -L 1` text, in order; sample `s` (from 0) is what tick `s + 1`
/// reads.
pub fn steps(procs: usize, every: usize, steps: usize) -> Vec<String> {
    let mut counters = vec![(0u64, 0u64); procs * 2];
    let mut all = Vec::with_capacity(steps);
    for s in 1..=steps {
        let mut out = String::from(",interface,state,bytes_in,bytes_out,\n");
        for p in 0..procs {
            for c in 0..2 {
                let i = p * 2 + c;
                if every > 0 && (i + s) % every == 0 {
                    counters[i].0 += (1000 + i * 37) as u64;
                    counters[i].1 += (300 + i * 11) as u64;
                }
            }
            let (a, b) = (counters[p * 2], counters[p * 2 + 1]);
            out.push_str(&format!(
                "proc{p}.{},,,{},{},\n",
                5_000_000 + p,
                a.0 + b.0,
                a.1 + b.1
            ));
            out.push_str(&format!(
                "tcp4 192.0.2.1:{}<->198.51.100.{}:443,en0,Established,{},{},\n",
                20_000 + p,
                p % 250 + 1,
                a.0,
                a.1
            ));
            out.push_str(&format!(
                "tcp6 2001:db8::1.{}<->2001:db8::{:x}.443,en0,Established,{},{},\n",
                30_000 + p,
                p + 1,
                b.0,
                b.1
            ));
        }
        all.push(out);
    }
    all
}
