//! The real `netmon record` with the fake nettop replaying `steps`, writing every tick into
//! `db`: the queries and metrics benches measure readers against a recorder that is writing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A real recorder on the database, fed by the fake nettop with 40 processes whose counters
/// grow every tick; returns once it has committed two ticks of its own.
pub fn start_recorder(bin: &Path, db: &Path, steps: &Path) -> Child {
    std::fs::create_dir_all(steps).expect("steps");
    for n in 1..=400u64 {
        let mut s = String::from(",interface,state,bytes_in,bytes_out,\n");
        for p in 0..40u64 {
            let (i, o) = (n * (p + 1) * 10_000, n * (p + 1) * 1000);
            s.push_str(&format!(
                "proc{p}.{},,,{i},{o},\ntcp4 192.0.2.1:{}<->198.51.100.{}:443,en0,Established,{i},{o},\n",
                5_000_000 + p,
                40_000 + p,
                p + 1
            ));
        }
        std::fs::write(steps.join(format!("step-{n:04}.csv")), s).expect("step");
    }
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-nettop");
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(bin)
        // Writing every tick: the most a reader can meet (the default writes every 10 minutes).
        .args([
            "record",
            "--source",
            "nettop",
            "--interval",
            "5s",
            "--write-every",
            "0",
            "--db",
        ])
        .arg(db)
        .env("PATH", path)
        .env("FAKE_NETTOP_DIR", steps)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn record");
    let conn = rusqlite::Connection::open(db).expect("open");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM ticks WHERE run_id = (SELECT max(id) FROM runs)",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if n >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the recorder committed no ticks");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}
