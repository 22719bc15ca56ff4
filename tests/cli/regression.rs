//! Regression tests, named after the issue that found them.

use std::os::unix::fs::PermissionsExt;

use crate::util::{Env, record_nettop};

/// Issue 8: the recorder took its lock (beside the database) before creating the database's
/// directory, so `netmon record` and the installed service failed on a fresh machine with
/// "netmon.db.lock: No such file or directory".
#[test]
fn issue_8_record_on_a_fresh_machine_creates_the_data_directory() {
    let env = Env::new();
    env.step(
        1,
        "csv",
        ",interface,state,bytes_in,bytes_out,\ncurl.5000002,,,10,1,\n",
    );
    let home = env.home();
    env.netmon()
        .env_remove("NETMON_DB")
        .env("HOME", &home)
        .args(record_nettop("2"))
        .assert()
        .success();
    let dir = home.join(".local/share/netmon");
    assert!(dir.join("netmon.db").exists());
    let mode = std::fs::metadata(&dir).expect("dir").permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}
