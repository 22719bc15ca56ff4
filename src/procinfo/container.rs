//! Which container a Linux process runs in, from its cgroup, named from the container
//! engine's own files on disk (no call to a daemon, which may be slow, absent or ask for a
//! socket netmon should not touch).
//!
//! Every engine puts a container's processes in a cgroup whose path carries the container's
//! id (`/system.slice/docker-<id>.scope`, `/docker/<id>`, `…/libpod-<id>.scope`,
//! `…/cri-containerd-<id>.scope`, `…/crio-<id>.scope`, `/kubepods/…/pod<uid>/<id>`) or its
//! name (`/lxc.payload.<name>`, `/lxc/<name>`, `/machine.slice/machine-<name>.scope` of
//! systemd-nspawn). [`from_cgroup_file`] finds the innermost such component in
//! `/proc/<pid>/cgroup` (cgroup v2 and v1 lines alike); [`Namer`] turns an id into the name
//! the user gave: Docker's `containers/<id>/config.v2.json`, Podman's and CRI-O's
//! `overlay-containers/containers.json`, Kubernetes' `/var/log/containers/<pod>_<namespace>_
//! <container>-<id>.log`. Where none says it, the short id (12 characters, as `docker ps`
//! shows it) is the name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The engine a container id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    Docker,
    Podman,
    Containerd,
    Crio,
    Lxc,
    Nspawn,
}

/// A container as its cgroup path names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Container {
    pub engine: Engine,
    /// The engine's id (64 hex digits), or the name for engines whose path carries the name.
    pub id: String,
}

/// The innermost container named by any line of `/proc/<pid>/cgroup`.
pub fn from_cgroup_file(text: &str) -> Option<Container> {
    // v2 ("0::/path") first: on a hybrid machine it is the one the kernel programs see too.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_by_key(|l| !l.starts_with("0::"));
    lines
        .into_iter()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find_map(from_path)
}

/// The innermost container named by a cgroup path.
pub fn from_path(path: &str) -> Option<Container> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut found = None;
    for (i, part) in parts.iter().enumerate() {
        let parent = i.checked_sub(1).map(|j| parts[j]);
        if let Some(c) = component(part, parent) {
            found = Some(c);
        }
    }
    found
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn component(part: &str, parent: Option<&str>) -> Option<Container> {
    let scoped = |prefix: &str| {
        part.strip_prefix(prefix)
            .map(|r| r.strip_suffix(".scope").unwrap_or(r))
            .filter(|id| is_id(id))
            .map(str::to_string)
    };
    let c = |engine, id: String| Some(Container { engine, id });
    if let Some(id) = scoped("docker-") {
        return c(Engine::Docker, id);
    }
    if part.starts_with("libpod-conmon-") {
        return None; // the monitor process beside a container, not in it
    }
    if let Some(id) = scoped("libpod-") {
        return c(Engine::Podman, id);
    }
    if let Some(id) = scoped("cri-containerd-") {
        return c(Engine::Containerd, id);
    }
    if let Some(id) = scoped("crio-") {
        return c(Engine::Crio, id);
    }
    if is_id(part) {
        let engine = match parent {
            Some("docker") => Engine::Docker,
            Some("libpod_parent") => Engine::Podman,
            Some(p) if p.starts_with("pod") || p.starts_with("kubepods") => Engine::Containerd,
            _ => return None,
        };
        return c(engine, part.to_string());
    }
    if let Some(name) = part.strip_prefix("lxc.payload.").filter(|n| !n.is_empty()) {
        return c(Engine::Lxc, name.to_string());
    }
    if matches!(parent, Some("lxc") | Some("lxc.payload")) && part != "lxc.monitor" {
        return c(Engine::Lxc, part.to_string());
    }
    if let Some(name) = part
        .strip_prefix("machine-")
        .and_then(|r| r.strip_suffix(".scope"))
        .filter(|_| parent == Some("machine.slice"))
    {
        return c(Engine::Nspawn, unescape_unit(name));
    }
    None
}

/// systemd unit-name escaping: `\x2d` is `-`.
fn unescape_unit(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        let hex = rest
            .get(i + 2..i + 4)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where the engines keep their files (the defaults; tests point them elsewhere).
#[derive(Debug, Clone)]
pub struct Roots {
    /// Docker's data-root (`/var/lib/docker`, or `data-root` in `/etc/docker/daemon.json`).
    pub docker: PathBuf,
    /// `containers.json` files of Podman and CRI-O (root's; a user's are added per uid).
    pub storage: Vec<PathBuf>,
    /// Kubernetes' per-container log links.
    pub kube_logs: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        let docker = std::fs::read_to_string("/etc/docker/daemon.json")
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("data-root")?.as_str().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/lib/docker"));
        Roots {
            docker,
            storage: vec![PathBuf::from(
                "/var/lib/containers/storage/overlay-containers/containers.json",
            )],
            kube_logs: PathBuf::from("/var/log/containers"),
        }
    }
}

/// Names containers from the engines' files, once per container.
#[derive(Debug, Default)]
pub struct Namer {
    roots: Roots,
    cache: HashMap<Container, String>,
}

impl Namer {
    pub fn new(roots: Roots) -> Self {
        Namer {
            roots,
            cache: HashMap::new(),
        }
    }

    /// The name to show for `c`, found in the files readable here; `home` is the home of the
    /// process's user (a rootless Podman keeps its files there).
    pub fn name(&mut self, c: &Container, home: Option<&Path>) -> String {
        if let Some(n) = self.cache.get(c) {
            return n.clone();
        }
        let found = match c.engine {
            Engine::Lxc | Engine::Nspawn => Some(c.id.clone()),
            Engine::Docker => docker_name(&self.roots.docker, &c.id),
            Engine::Podman | Engine::Crio => {
                let mut files = self.roots.storage.clone();
                if let Some(h) = home {
                    files.push(h.join(
                        ".local/share/containers/storage/overlay-containers/containers.json",
                    ));
                }
                files.iter().find_map(|f| storage_name(f, &c.id))
            }
            Engine::Containerd => kube_name(&self.roots.kube_logs, &c.id),
        };
        let name = found.unwrap_or_else(|| c.id.chars().take(12).collect());
        self.cache.insert(c.clone(), name.clone());
        name
    }
}

fn docker_name(root: &Path, id: &str) -> Option<String> {
    let text =
        std::fs::read_to_string(root.join("containers").join(id).join("config.v2.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = v.get("Name")?.as_str()?.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_string())
}

fn storage_name(file: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.as_array()?
        .iter()
        .find(|c| c.get("id").and_then(|i| i.as_str()) == Some(id))?
        .get("names")?
        .as_array()?
        .first()?
        .as_str()
        .map(str::to_string)
}

/// `<pod>_<namespace>_<container>-<id>.log` → `<pod>/<container>`.
fn kube_name(dir: &Path, id: &str) -> Option<String> {
    let suffix = format!("-{id}.log");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let file = e.file_name().to_string_lossy().into_owned();
        let stem = file.strip_suffix(&suffix)?;
        let mut parts = stem.splitn(3, '_');
        let (pod, _ns, container) = (parts.next()?, parts.next()?, parts.next()?);
        Some(format!("{pod}/{container}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1d5e7b4a6c8d0e2f4a6b8c0d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b2c";

    #[test]
    fn docker_ids_from_systemd_and_cgroupfs_paths() {
        for path in [
            format!("/system.slice/docker-{ID}.scope"),
            format!("/docker/{ID}"),
        ] {
            assert_eq!(
                from_path(&path),
                Some(Container {
                    engine: Engine::Docker,
                    id: ID.into()
                }),
                "{path}"
            );
        }
    }

    #[test]
    fn podman_rootless_and_rootful_but_not_its_monitor() {
        let rootless = format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
        );
        assert_eq!(from_path(&rootless).map(|c| c.engine), Some(Engine::Podman));
        assert_eq!(
            from_path(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
    }

    #[test]
    fn kubernetes_pods_name_the_innermost_container() {
        let kind = format!(
            "/system.slice/docker-{ID}.scope/kubelet.slice/kubelet-kubepods.slice/\
             kubelet-kubepods-besteffort.slice/cri-containerd-{}.scope",
            "a".repeat(64)
        );
        assert_eq!(
            from_path(&kind),
            Some(Container {
                engine: Engine::Containerd,
                id: "a".repeat(64)
            })
        );
        let cgroupfs = format!("/kubepods/burstable/pod1234-5678/{ID}");
        assert_eq!(
            from_path(&cgroupfs).map(|c| c.engine),
            Some(Engine::Containerd)
        );
        assert_eq!(
            from_path(&format!("/kubepods.slice/crio-{ID}.scope")).map(|c| c.engine),
            Some(Engine::Crio)
        );
    }

    #[test]
    fn lxc_and_nspawn_paths_carry_the_name() {
        assert_eq!(
            from_path("/lxc.payload.web-1/init.scope").map(|c| c.id),
            Some("web-1".into())
        );
        assert_eq!(from_path("/lxc/db").map(|c| c.id), Some("db".into()));
        assert_eq!(from_path("/lxc.monitor.db"), None);
        assert_eq!(
            from_path("/machine.slice/machine-my\\x2dbox.scope/payload").map(|c| c.id),
            Some("my-box".into())
        );
    }

    #[test]
    fn plain_services_and_sessions_are_no_container() {
        for p in [
            "/",
            "/user.slice/user-1000.slice/session-2.scope",
            "/system.slice/nginx.service",
            "/docker",
            "/system.slice/docker-notanid.scope",
        ] {
            assert_eq!(from_path(p), None, "{p}");
        }
    }

    #[test]
    fn the_cgroup_file_is_read_v2_line_first_and_v1_lines_too() {
        let hybrid = format!("12:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n");
        assert_eq!(
            from_cgroup_file(&hybrid).map(|c| c.engine),
            Some(Engine::Docker)
        );
        assert_eq!(from_cgroup_file("0::/init.scope\n"), None);
        assert_eq!(from_cgroup_file("garbage\n::\n"), None);
    }

    #[test]
    fn names_come_from_the_engines_files_else_the_short_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let docker = dir.path().join("docker");
        std::fs::create_dir_all(docker.join("containers").join(ID)).expect("mkdir");
        std::fs::write(
            docker.join("containers").join(ID).join("config.v2.json"),
            r#"{"ID":"x","Name":"/web-1"}"#,
        )
        .expect("write");
        let storage = dir.path().join("containers.json");
        let pid = "b".repeat(64);
        std::fs::write(&storage, format!(r#"[{{"id":"{pid}","names":["db"]}}]"#)).expect("write");
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("mkdir");
        let kid = "c".repeat(64);
        std::fs::write(logs.join(format!("nginx-7c5d_default_nginx-{kid}.log")), "")
            .expect("write");
        let mut n = Namer::new(Roots {
            docker,
            storage: vec![storage],
            kube_logs: logs,
        });
        let c = |engine, id: &str| Container {
            engine,
            id: id.to_string(),
        };
        assert_eq!(n.name(&c(Engine::Docker, ID), None), "web-1");
        assert_eq!(n.name(&c(Engine::Podman, &pid), None), "db");
        assert_eq!(
            n.name(&c(Engine::Containerd, &kid), None),
            "nginx-7c5d/nginx"
        );
        assert_eq!(
            n.name(&c(Engine::Docker, &"d".repeat(64)), None),
            "dddddddddddd"
        );
        assert_eq!(n.name(&c(Engine::Lxc, "web-2"), None), "web-2");
    }

    #[test]
    fn odd_files_do_not_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("containers.json");
        for text in ["", "{}", "[1,2]", r#"[{"id":5}]"#, "[{\"names\":[]}]"] {
            std::fs::write(&f, text).expect("write");
            assert_eq!(storage_name(&f, ID), None, "{text}");
        }
        assert_eq!(unescape_unit("a\\x2"), "a\\x2");
    }
}
