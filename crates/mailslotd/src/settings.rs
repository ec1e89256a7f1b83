//! The daemon's settings: command-line options over the configuration file, the host's name and
//! interfaces filled in.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use mailslot_router::{Interface, RouterConfig};

use mailslot::daemon::{Mode, ModeStatus};

use crate::config::{netbios_name_for_host, DaemonConfig, SambaConfig, SambaMode, DEFAULT_PATH};
use crate::samba;
use crate::sys;

/// Command-line options of the daemon (`mailslotd` and `mailslot daemon`). Options override the
/// configuration file.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// Configuration file (TOML); default /etc/mailslot/mailslotd.toml when it exists.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Check the configuration, print the effective settings and exit.
    #[arg(long)]
    pub validate: bool,
    /// NetBIOS computer name (overrides `netbios_name`).
    #[arg(long)]
    pub netbios_name: Option<String>,
    /// Workgroup (overrides `workgroup`).
    #[arg(long)]
    pub workgroup: Option<String>,
    /// Interface as ADDRESS/PREFIX or a name; repeatable (overrides `interfaces`).
    #[arg(long = "interface")]
    pub interfaces: Vec<String>,
    /// Datagram port (overrides `port`).
    #[arg(long)]
    pub port: Option<u16>,
    /// Session-service port, TCP (overrides `session_port`; 0 = do not listen).
    #[arg(long, value_name = "PORT")]
    pub session_port: Option<u16>,
    /// Name-service port (overrides `name_port`).
    #[arg(long)]
    pub name_port: Option<u16>,
    /// WINS server (overrides `wins_server`).
    #[arg(long)]
    pub wins_server: Option<Ipv4Addr>,
    /// User to switch to after binding ("" keeps root; overrides `user`).
    #[arg(long)]
    pub user: Option<String>,
    /// Serve Prometheus metrics on 127.0.0.1:PORT (overrides `metrics_port`).
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// Run beside Samba's nmbd (overrides `[samba] mode`).
    #[arg(long, conflicts_with = "standalone")]
    pub beside_samba: bool,
    /// Own UDP 137/138 even when Samba's nmbd runs (overrides `[samba] mode`).
    #[arg(long)]
    pub standalone: bool,
    /// Path of nmbd's unexpected socket (overrides `[samba] socket`).
    #[arg(long)]
    pub samba_socket: Option<PathBuf>,
    /// The smb.conf to read Samba's names from (overrides `[samba] config`).
    #[arg(long)]
    pub samba_config: Option<PathBuf>,
}

/// Everything resolved from the file, the options and the machine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file's values with the options applied.
    pub file: DaemonConfig,
    /// What the router gets.
    pub router: RouterConfig,
    /// Standalone or beside Samba, and why.
    pub mode: ModeStatus,
    /// Beside Samba: nmbd's unexpected socket.
    pub samba_socket: Option<PathBuf>,
}

impl DaemonArgs {
    /// Applies the options over the configuration file's values.
    fn apply(&self, file: &mut DaemonConfig) {
        if let Some(v) = &self.netbios_name {
            file.netbios_name = Some(v.clone());
        }
        if let Some(v) = &self.workgroup {
            file.workgroup = v.clone();
        }
        if !self.interfaces.is_empty() {
            file.interfaces = self.interfaces.clone();
        }
        if let Some(v) = self.port {
            file.port = v;
        }
        if let Some(v) = self.session_port {
            file.session_port = v;
        }
        if let Some(v) = self.name_port {
            file.name_port = v;
        }
        if self.wins_server.is_some() {
            file.wins_server = self.wins_server;
        }
        if let Some(v) = &self.user {
            file.user = v.clone();
        }
        if self.metrics_port.is_some() {
            file.metrics_port = self.metrics_port;
        }
        if self.beside_samba {
            file.samba.mode = SambaMode::Beside;
        }
        if self.standalone {
            file.samba.mode = SambaMode::Standalone;
        }
        if self.samba_socket.is_some() {
            file.samba.socket = self.samba_socket.clone();
        }
        if self.samba_config.is_some() {
            file.samba.config = self.samba_config.clone();
        }
    }
}

/// Reads the configuration file, applies the options and asks the machine for the rest.
pub fn load(args: &DaemonArgs) -> Result<Settings> {
    let mut file = match &args.config {
        Some(p) => DaemonConfig::load(&p.to_string_lossy())?,
        None if std::path::Path::new(DEFAULT_PATH).exists() => DaemonConfig::load(DEFAULT_PATH)?,
        None => DaemonConfig::default(),
    };
    args.apply(&mut file);
    file.check()?;
    let (mode, samba_socket) = choose_mode(args, &file.samba);
    let beside = mode.mode == Mode::BesideSamba;
    let mut aliases = Vec::new();
    if beside {
        // The names are nmbd's: take them from Samba's configuration.
        let names = samba::samba_names(file.samba.config.as_deref());
        if let Some(n) = names.netbios_name {
            file.netbios_name = Some(n);
        }
        if let Some(w) = names.workgroup {
            file.workgroup = w;
        }
        aliases = names.aliases;
        file.check()?;
    }
    let netbios_name = match &file.netbios_name {
        Some(n) => n.to_ascii_uppercase(),
        None => netbios_name_for_host(&sys::hostname().context("cannot read the host name")?),
    };
    let interfaces = resolve_interfaces(&file.interfaces)?;
    let mut router = RouterConfig::new(&netbios_name, &file.workgroup, interfaces);
    router.wins_server = file.wins_server;
    router.port = file.port;
    router.name_port = file.name_port;
    if file.session_port != 0 {
        router.session_port = file.session_port;
    }
    router.scope = file.scope.clone();
    router.check_source = file.network.check_source;
    router.seed = (std::process::id() as u16).wrapping_mul(7919);
    router.beside_nmbd = beside;
    router.aliases = aliases;
    router.messenger_names = file
        .messenger_names
        .iter()
        .map(|n| n.to_ascii_uppercase())
        .collect();
    Ok(Settings {
        file,
        router,
        mode,
        samba_socket,
    })
}

/// Standalone or beside Samba: the option, else the configuration, else whether nmbd answers on
/// its unexpected socket.
fn choose_mode(args: &DaemonArgs, samba_cfg: &SambaConfig) -> (ModeStatus, Option<PathBuf>) {
    let from = if args.beside_samba || args.standalone {
        "option"
    } else {
        "configuration"
    };
    let status = |mode, reason: String, socket: Option<&PathBuf>| ModeStatus {
        mode,
        reason,
        samba_socket: socket.map(|p| p.display().to_string()),
        ..ModeStatus::default()
    };
    match samba_cfg.mode {
        SambaMode::Standalone => (
            status(Mode::Standalone, format!("standalone by {from}"), None),
            None,
        ),
        SambaMode::Beside => {
            let path = samba::socket_path(samba_cfg.socket.as_deref(), samba_cfg.config.as_deref());
            (
                status(
                    Mode::BesideSamba,
                    format!("beside Samba by {from}"),
                    Some(&path),
                ),
                Some(path),
            )
        }
        SambaMode::Auto => {
            let path = samba::socket_path(samba_cfg.socket.as_deref(), samba_cfg.config.as_deref());
            match samba::probe(&path) {
                samba::Probe::Answers => {
                    let why = format!("beside Samba: nmbd answers on {}", path.display());
                    (status(Mode::BesideSamba, why, Some(&path)), Some(path))
                }
                samba::Probe::OtherNamespace => {
                    let why = format!(
                        "standalone: the nmbd on {} runs in another network namespace",
                        path.display()
                    );
                    (status(Mode::Standalone, why, None), None)
                }
                samba::Probe::Silent => {
                    let why = format!("standalone: no nmbd answers on {}", path.display());
                    (status(Mode::Standalone, why, None), None)
                }
            }
        }
    }
}

fn resolve_interfaces(wanted: &[String]) -> Result<Vec<Interface>> {
    let all = sys::ipv4_interfaces().context("cannot list network interfaces")?;
    let mut out = Vec::new();
    if wanted.is_empty() {
        out.extend(
            all.iter()
                .filter(|(_, i)| !i.ip.is_loopback())
                .map(|(_, i)| *i),
        );
        if out.is_empty() {
            bail!("no IPv4 interface other than loopback; set `interfaces` in the configuration");
        }
        return Ok(out);
    }
    for w in wanted {
        if w.contains('/') {
            out.push(Interface::parse(w).map_err(anyhow::Error::msg)?);
        } else {
            let found: Vec<Interface> = all
                .iter()
                .filter(|(n, _)| n == w)
                .map(|(_, i)| *i)
                .collect();
            if found.is_empty() {
                bail!("interface {w:?} has no IPv4 address");
            }
            out.extend(found);
        }
    }
    Ok(out)
}

/// The effective settings as `--validate` prints them.
pub fn describe(r: &RouterConfig) -> String {
    let mut out = String::from("configuration OK\n");
    out.push_str(&format!("netbios_name = {:?}\n", r.netbios_name));
    out.push_str(&format!("workgroup = {:?}\n", r.workgroup));
    for i in &r.interfaces {
        out.push_str(&format!(
            "interface = {}/{} (broadcast {})\n",
            i.ip, i.prefix, i.broadcast
        ));
    }
    out.push_str(&format!(
        "ports = datagram {} / name {}\n",
        r.port, r.name_port
    ));
    if let Some(w) = r.wins_server {
        out.push_str(&format!("wins_server = {w}\n"));
    }
    out.push_str(&format!("check_source = {}\n", r.check_source));
    if r.beside_nmbd {
        out.push_str("mode = beside Samba (names and UDP 137 are nmbd's)\n");
        if !r.messenger_names.is_empty() {
            out.push_str(&format!("messenger_names = {:?}\n", r.messenger_names));
        }
        if !r.aliases.is_empty() {
            out.push_str(&format!("aliases = {:?}\n", r.aliases));
        }
    }
    out
}
