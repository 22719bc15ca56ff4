//! Users and groups through the `nix` crate (getpwuid_r and friends), instead of hand-written
//! unsafe FFI: who runs netmon, a reader's primary group, and whether systemd keeps this
//! user's services after logout.

use std::path::Path;

use nix::unistd::{Gid, Group, Uid, User};

use crate::exit::user;

/// The real uid of this process.
pub fn uid() -> u32 {
    Uid::current().as_raw()
}

/// The effective uid of this process (root for `sudo`).
pub fn euid() -> u32 {
    Uid::effective().as_raw()
}

/// The name of the user with `uid`, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The name of a user's primary group (its number when the group has no name).
pub fn primary_group(user_name: &str) -> anyhow::Result<String> {
    let u = User::from_name(user_name).ok().flatten().ok_or_else(|| {
        user(format!(
            "no user named {user_name:?} on this machine (--reader)"
        ))
    })?;
    Ok(group_name(u.gid).unwrap_or_else(|| u.gid.to_string()))
}

fn group_name(gid: Gid) -> Option<String> {
    Group::from_gid(gid).ok().flatten().map(|g| g.name)
}

/// Whether systemd keeps this user's services running after logout.
pub fn lingering() -> bool {
    user_name(uid()).is_some_and(|u| Path::new("/var/lib/systemd/linger").join(u).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_and_a_made_up_user_is_a_clear_error() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        let g = primary_group("root").expect("root's group");
        assert!(g == "root" || g == "wheel", "{g}");
        let e = primary_group("no-such-user-netmon-test").expect_err("unknown user");
        assert!(e.to_string().contains("--reader"), "{e}");
    }
}
