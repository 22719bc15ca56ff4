//! Linux: systemd units (systemd.service(5), systemd.exec(5)) and the systemctl commands that
//! enable, stop and inspect them.
//!
//! The user unit mirrors the LaunchAgent: started with the user's session (`default.target`),
//! restarted 30 s after a failure, never after exit 0 (a requested stop) or exit 1 (a user
//! error such as another recorder on the same database, which retrying cannot fix), and run
//! at idle I/O and batch CPU priority. Logs go to the journal
//! (`journalctl --user -u netmon-record`).
//!
//! The system unit runs `record --source ebpf` as root for every process on the machine, with
//! only the capabilities the eBPF source uses left in its bounding set, the usual hardening
//! options, and its database in `/var/lib/netmon` (StateDirectory) owned by root and the
//! reader's group, which may read it but not write it (`record --share-with-group`).

use std::path::{Path, PathBuf};

use super::apply::Ran;
use super::probe::{self, ComponentStatus};
use super::{Component, Context, FileWrite, InstallRequest, Manager, Step};

/// systemd: a user unit, or with `--system` a system unit run as root.
pub struct Systemd;

impl Manager for Systemd {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn tool(&self) -> &'static str {
        "systemctl"
    }

    fn definition_path(&self, ctx: &Context, c: Component) -> PathBuf {
        let dir = if ctx.system {
            system_unit_dir(&ctx.root)
        } else {
            user_unit_dir(&ctx.home, ctx.xdg_config_home.as_deref())
        };
        dir.join(unit_name(c))
    }

    fn definition(
        &self,
        ctx: &Context,
        c: Component,
        argv: &[String],
        req: &InstallRequest,
    ) -> anyhow::Result<FileWrite> {
        let db_dir = ctx.db.parent();
        let system_dir = Path::new(SYSTEM_DB).parent();
        let outside_state_dir = db_dir.filter(|d| Some(*d) != system_dir);
        Ok(FileWrite {
            path: self.definition_path(ctx, c),
            contents: unit(&UnitSpec {
                component: c,
                argv,
                system_group: if ctx.system {
                    req.reader_group.as_deref()
                } else {
                    None
                },
                extra_write_dir: outside_state_dir,
            }),
            mode: 0o644,
        })
    }

    fn dirs(&self, _ctx: &Context, _c: Component) -> Vec<PathBuf> {
        Vec::new()
    }

    fn install_steps(
        &self,
        ctx: &Context,
        c: Component,
        _definition: &Path,
    ) -> (Vec<Step>, Vec<Step>) {
        install_steps(ctx.system, c)
    }

    fn uninstall_steps(&self, ctx: &Context, c: Component) -> (Vec<Step>, Vec<Step>) {
        uninstall_steps(ctx.system, c)
    }

    fn install_notes(&self, ctx: &Context, req: &InstallRequest) -> Vec<String> {
        if !ctx.system {
            return vec!["logs: journalctl --user -u netmon-record".to_string()];
        }
        vec![
            "logs: journalctl -u netmon-record".to_string(),
            format!(
                "read it as {}: netmon --db {} status (or export NETMON_DB={})",
                req.reader_group.as_deref().unwrap_or("the reader"),
                ctx.db.display(),
                ctx.db.display()
            ),
        ]
    }

    fn starts_at(&self, ctx: &Context) -> &'static str {
        if ctx.system { "boot" } else { "login" }
    }

    fn warnings(&self, ctx: &Context) -> Vec<String> {
        if ctx.system || super::users::lingering() {
            return Vec::new();
        }
        vec![
            "note: systemd stops your user services when you log out; to keep recording \
             while logged out, run: loginctl enable-linger"
                .to_string(),
        ]
    }

    fn logs(&self, ctx: &Context, c: Component) -> String {
        format!(
            "journalctl {}-u {}",
            if ctx.system { "" } else { "--user " },
            unit_name(c)
        )
    }

    fn status_command(&self, ctx: &Context, c: Component) -> Vec<String> {
        show(ctx.system, c)
    }

    fn read_status(&self, ran: &Ran, st: &mut ComponentStatus) {
        if !ran.success {
            st.error = Some(probe::failure(ran));
            return;
        }
        st.manager_says = parse_show(&ran.stdout);
        st.running = Some(probe::value(&st.manager_says, "ActiveState") == Some("active"));
        st.pid = probe::value(&st.manager_says, "MainPID")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p != 0);
    }
}

/// The unit's name, e.g. `netmon-record.service`.
pub fn unit_name(c: Component) -> String {
    format!("netmon-{}.service", c.name())
}

/// Where user units go: `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
pub fn user_unit_dir(home: &Path, xdg_config_home: Option<&Path>) -> PathBuf {
    xdg_config_home
        .filter(|p| p.is_absolute())
        .map_or_else(|| home.join(".config"), Path::to_path_buf)
        .join("systemd/user")
}

/// Where system units written by the administrator go (under `root`, normally `/`).
pub fn system_unit_dir(root: &Path) -> PathBuf {
    root.join("etc/systemd/system")
}

pub use crate::paths::SYSTEM_DB;

/// What differs between the units netmon writes.
pub struct UnitSpec<'a> {
    pub component: Component,
    pub argv: &'a [String],
    /// `Some(group)`: the system unit, run as root with this group.
    pub system_group: Option<&'a str>,
    /// For the system unit: a database directory outside /var/lib/netmon needs write access.
    pub extra_write_dir: Option<&'a Path>,
}

pub fn unit(spec: &UnitSpec<'_>) -> String {
    let what = match spec.component {
        Component::Record => "netmon recorder: which programs use the network",
        Component::Serve => "netmon ingest server for the browser extension",
    };
    let scope = if spec.system_group.is_some() {
        " (system-wide)"
    } else {
        ""
    };
    let mut s = format!(
        "# Written by `netmon service install`; reinstall to change it, \
         `netmon service uninstall` to remove it.\n\
         [Unit]\n\
         Description={what}{scope}\n\
         Documentation=man:netmon-{}(1)\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={}\n",
        spec.component.name(),
        exec_line(spec.argv)
    );
    s.push_str(
        "Restart=on-failure\n\
         RestartSec=30\n\
         # Exit code 1 is a user error (another recorder on this database, a database newer than\n\
         # this netmon, no usable source): restarting cannot fix it. See `netmon status`.\n\
         RestartPreventExitStatus=1\n\
         # Time to commit the tick in progress after SIGTERM.\n\
         TimeoutStopSec=30\n\
         Nice=10\n\
         IOSchedulingClass=idle\n\
         CPUSchedulingPolicy=batch\n\
         NoNewPrivileges=yes\n",
    );
    if let Some(group) = spec.system_group {
        s.push_str(&format!(
            "# Root, with the reader's group: the database is root-owned and readable by that group.\n\
             Group={group}\n\
             UMask=0027\n\
             StateDirectory=netmon\n\
             StateDirectoryMode=0750\n\
             # The eBPF source: loading programs and maps (CAP_BPF), attaching them to raw\n\
             # tracepoints (CAP_PERFMON), naming other users' processes by /proc/PID/exe\n\
             # (CAP_SYS_PTRACE). Nothing else: no file access beyond root's own files.\n\
             CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_PTRACE\n\
             # eBPF maps are charged to locked memory on kernels before 5.11.\n\
             LimitMEMLOCK=infinity\n\
             ProtectSystem=strict\n\
             ProtectHome=read-only\n\
             PrivateTmp=yes\n\
             PrivateDevices=yes\n\
             ProtectKernelTunables=yes\n\
             ProtectKernelModules=yes\n\
             ProtectKernelLogs=yes\n\
             ProtectControlGroups=yes\n\
             ProtectClock=yes\n\
             ProtectHostname=yes\n\
             RestrictNamespaces=yes\n\
             RestrictRealtime=yes\n\
             RestrictSUIDSGID=yes\n\
             LockPersonality=yes\n\
             MemoryDenyWriteExecute=yes\n\
             SystemCallArchitectures=native\n\
             # Netlink for the kernel's socket and process information; no network sockets.\n\
             RestrictAddressFamilies=AF_UNIX AF_NETLINK\n"
        ));
        if let Some(dir) = spec.extra_write_dir {
            s.push_str(&format!(
                "ReadWritePaths={}\n",
                quote_arg(&dir.to_string_lossy())
            ));
        }
        s.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    } else {
        s.push_str("\n[Install]\nWantedBy=default.target\n");
    }
    s
}

/// An `ExecStart=` command line: each argument quoted as systemd.service(5) "Command lines"
/// reads it back, with `%` (specifiers) and `$` (variables) doubled so they stay literal.
pub fn exec_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| quote_arg(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_arg(a: &str) -> String {
    let literal = a.replace('%', "%%").replace('$', "$$");
    let plain = !literal.is_empty()
        && literal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%$".contains(c));
    if plain {
        return literal;
    }
    let mut q = String::from("\"");
    for c in literal.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn systemctl(system: bool, args: &[&str]) -> Vec<String> {
    let mut v = vec!["systemctl".to_string()];
    if !system {
        v.push("--user".into());
    }
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// Reload definitions, enable at login/boot, and (re)start now: `restart` starts a stopped
/// unit and replaces a running one, so reinstalling applies new options.
pub fn install_steps(system: bool, c: Component) -> (Vec<Step>, Vec<Step>) {
    let u = unit_name(c);
    (
        Vec::new(),
        vec![
            Step::always(systemctl(system, &["daemon-reload"])),
            Step::always(systemctl(system, &["enable", &u])),
            Step::always(systemctl(system, &["restart", &u])),
        ],
    )
}

/// Stop and disable while the file still exists, then reload once it is gone.
pub fn uninstall_steps(system: bool, c: Component) -> (Vec<Step>, Vec<Step>) {
    let u = unit_name(c);
    (
        vec![Step::always(systemctl(system, &["disable", "--now", &u]))],
        vec![Step::always(systemctl(system, &["daemon-reload"]))],
    )
}

/// The properties `service status` asks for.
pub const SHOW_PROPERTIES: &str =
    "LoadState,ActiveState,SubState,UnitFileState,MainPID,NRestarts,ExecMainStartTimestamp,Result";

pub fn show(system: bool, c: Component) -> Vec<String> {
    systemctl(
        system,
        &[
            "show",
            &unit_name(c),
            &format!("--property={SHOW_PROPERTIES}"),
        ],
    )
}

/// `systemctl show` prints `Key=value` lines.
pub fn parse_show(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_lines_quote_spaces_and_keep_specifiers_literal() {
        let argv: Vec<String> = [
            "/opt/net mon/bin/netmon",
            "record",
            "--db",
            "/home/u/100%/$HOME/a\"b\\c.db",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            exec_line(&argv),
            r#""/opt/net mon/bin/netmon" record --db "/home/u/100%%/$$HOME/a\"b\\c.db""#
        );
        assert_eq!(exec_line(&["".to_string()]), r#""""#);
    }

    #[test]
    fn show_output_parses_into_pairs() {
        let out = "ActiveState=active\nSubState=running\nMainPID=42\nExecMainStartTimestamp=Tue 2026-11-24 07:00:03 UTC\n";
        let p = parse_show(out);
        assert_eq!(p[2], ("MainPID".to_string(), "42".to_string()));
        assert_eq!(p[3].1, "Tue 2026-11-24 07:00:03 UTC");
    }

    #[test]
    fn the_system_unit_keeps_only_the_ebpf_capabilities() {
        let argv = vec!["/usr/bin/netmon".to_string(), "record".to_string()];
        let u = unit(&UnitSpec {
            component: Component::Record,
            argv: &argv,
            system_group: Some("alice"),
            extra_write_dir: None,
        });
        assert!(u.contains("\nCapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_PTRACE\n"));
        assert!(u.contains("\nGroup=alice\n") && u.contains("\nNoNewPrivileges=yes\n"));
        assert!(u.contains("\nWantedBy=multi-user.target\n"));
        let user = unit(&UnitSpec {
            component: Component::Record,
            argv: &argv,
            system_group: None,
            extra_write_dir: None,
        });
        assert!(!user.contains("Capability") && user.contains("\nWantedBy=default.target\n"));
    }
}
