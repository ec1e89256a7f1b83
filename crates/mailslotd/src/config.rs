//! The daemon's configuration file ([`DaemonConfig`], TOML); [`crate::daemon`] turns it into the
//! protocol core's [`RouterConfig`](mailslot_router::RouterConfig).
//!
//! ```toml
//! netbios_name = "HOSTA"          # default: the host name, upper case, cut to 15 characters
//! workgroup = "WORKGROUP"         # the primary workgroup / domain (`\\*\mailslot\x` goes there)
//! interfaces = ["10.99.0.1/24"]   # address/prefix or interface name; default: every IPv4 interface but loopback
//! wins_server = "10.99.0.3"       # optional: H-node (WINS first, broadcast next)
//! bind_address = "0.0.0.0"
//! port = 138                      # NetBIOS datagram service
//! name_port = 137                 # NetBIOS name service
//! session_port = 139              # NetBIOS session service (TCP): first-class writes, Messenger; 0 = off
//! user = "mailslot"               # drop root to this user after binding ("" = keep root)
//! metrics_port = 9138             # optional: Prometheus text on 127.0.0.1:PORT
//! recv_buffer = 4194304           # SO_RCVBUF of the UDP sockets, bytes
//!
//! messenger_names = ["ALICE"]    # further Messenger names (NAME<03>), e.g. users', as NT's "net name"
//!
//! [network]
//! check_source = true             # drop datagrams whose header source IP is not the sender's
//!
//! [samba]
//! mode = "auto"                   # "auto": beside nmbd when it answers; "beside"; "standalone"
//! socket = "/run/samba/nmbd/unexpected"  # nmbd's unexpected socket (default: from Samba)
//! config = "/etc/samba/smb.conf"  # the smb.conf names are read from (default: Samba's own)
//! ```

use std::net::Ipv4Addr;

use mailslot_proto::NetbiosName;
use mailslot_router::Interface;
use serde::Deserialize;
use thiserror::Error;

/// Default path of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/mailslot/mailslotd.toml";

/// Why a configuration is not usable.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is out of range.
    #[error("invalid value for {key}: {reason}")]
    Value {
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The daemon's configuration file (keys named like Samba's `smb.conf` where one exists).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Our computer name (`netbios name`).
    pub netbios_name: Option<String>,
    /// Primary workgroup or domain (`workgroup`).
    pub workgroup: String,
    /// Interfaces (`interfaces`): `"10.0.0.5/24"` or `"eth0"`; empty = all IPv4 but loopback.
    pub interfaces: Vec<String>,
    /// WINS server (`wins server`).
    pub wins_server: Option<Ipv4Addr>,
    /// Address to bind both UDP sockets to.
    pub bind_address: Ipv4Addr,
    /// Datagram port (138).
    pub port: u16,
    /// Name-service port (137).
    pub name_port: u16,
    /// Session-service port (TCP 139) this daemon listens on and calls other hosts' daemons on;
    /// 0 = do not listen (first-class writes from other hosts and Messenger sessions are then
    /// refused by the host; this host can still send them to peers on 139).
    pub session_port: u16,
    /// NetBIOS scope (`netbios scope`), usually empty.
    pub scope: String,
    /// User to switch to after binding, when started as root ("" = stay root).
    pub user: String,
    /// Serve Prometheus metrics on 127.0.0.1:PORT.
    pub metrics_port: Option<u16>,
    /// SO_RCVBUF for the UDP sockets.
    pub recv_buffer: usize,
    /// Further Messenger names this host registers as `NAME<03>` (unique) and takes Messenger
    /// messages for, besides the computer name: NT's "messenger names" (users' names, `net name`).
    pub messenger_names: Vec<String>,
    /// Checks on what arrives from the network (`[network]`).
    pub network: NetworkConfig,
    /// Running beside Samba's nmbd (`[samba]`).
    pub samba: SambaConfig,
}

/// Whether to run beside Samba's `nmbd`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SambaMode {
    /// Beside nmbd when its unexpected socket is there and answers, else standalone.
    #[default]
    Auto,
    /// Always beside nmbd (waits for its socket).
    Beside,
    /// Never: own UDP 137/138 and the names.
    Standalone,
}

/// The `[samba]` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SambaConfig {
    /// The mode.
    pub mode: SambaMode,
    /// Path of nmbd's unexpected socket (default: from Samba's configuration or build).
    pub socket: Option<std::path::PathBuf>,
    /// The smb.conf to read Samba's names from (default: Samba's own).
    pub config: Option<std::path::PathBuf>,
}

/// The `[network]` table: checks on received datagrams.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Drop (and count) a datagram whose NetBIOS header names a source IP other than the
    /// packet's source address (default `true`; only a network with a datagram distribution
    /// server relaying datagrams needs `false`).
    pub check_source: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self { check_source: true }
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            netbios_name: None,
            workgroup: "WORKGROUP".into(),
            interfaces: Vec::new(),
            wins_server: None,
            bind_address: Ipv4Addr::UNSPECIFIED,
            port: mailslot_proto::datagram::DATAGRAM_PORT,
            name_port: mailslot_proto::nbns::NAME_SERVICE_PORT,
            session_port: mailslot_proto::session::SESSION_PORT,
            scope: String::new(),
            user: mailslot::daemon::DAEMON_USER.into(),
            metrics_port: None,
            recv_buffer: 4 << 20,
            messenger_names: Vec::new(),
            network: NetworkConfig::default(),
            samba: SambaConfig::default(),
        }
    }
}

impl DaemonConfig {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let c: Self = toml::from_str(text)?;
        c.check()?;
        Ok(c)
    }

    /// Reads and parses a file.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_string(),
            error,
        })?;
        Self::parse(&text)
    }

    /// Checks the values that need no I/O.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(n) = &self.netbios_name {
            check_name("netbios_name", n)?;
        }
        check_name("workgroup", &self.workgroup)?;
        for i in &self.interfaces {
            if i.contains('/') {
                Interface::parse(i).map_err(|reason| ConfigError::Value {
                    key: "interfaces",
                    reason,
                })?;
            } else if i.is_empty() {
                return Err(ConfigError::Value {
                    key: "interfaces",
                    reason: "empty interface name".into(),
                });
            }
        }
        for n in &self.messenger_names {
            check_name("messenger_names", n)?;
        }
        if self.port == 0 || self.name_port == 0 {
            return Err(ConfigError::Value {
                key: "port",
                reason: "ports must not be 0".into(),
            });
        }
        Ok(())
    }
}

fn check_name(key: &'static str, n: &str) -> Result<(), ConfigError> {
    if n == "*" {
        return Err(ConfigError::Value {
            key,
            reason: "\"*\" is not a name".into(),
        });
    }
    NetbiosName::new(n, 0)
        .map(|_| ())
        .map_err(|e| ConfigError::Value {
            key,
            reason: format!("{n:?}: {e}"),
        })
}

/// The NetBIOS computer name for a host name: first label, upper case, at most 15 characters.
pub fn netbios_name_for_host(host: &str) -> String {
    let label = host.split('.').next().unwrap_or(host);
    let mut n: String = label
        .chars()
        .filter(|c| c.is_ascii_graphic() && !"\\/:*?\"<>|".contains(*c))
        .collect();
    n.make_ascii_uppercase();
    n.truncate(15);
    if n.is_empty() {
        n.push_str("LINUX");
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file_and_rejects_bad_values() {
        let c = DaemonConfig::parse(
            r#"
netbios_name = "hosta"
workgroup = "LAB"
interfaces = ["10.99.0.1/24", "eth1"]
wins_server = "10.99.0.3"
port = 1138
name_port = 1137
session_port = 1139
user = ""
metrics_port = 9138

[network]
check_source = false

[samba]
mode = "beside"
socket = "/tmp/nmbd/unexpected"
"#,
        )
        .unwrap();
        assert!(!c.network.check_source);
        assert_eq!(c.samba.mode, SambaMode::Beside);
        assert_eq!(DaemonConfig::default().samba.mode, SambaMode::Auto);
        assert!(DaemonConfig::parse("[samba]\nmode = \"maybe\"").is_err());
        assert!(DaemonConfig::default().network.check_source);
        assert!(DaemonConfig::parse("[network]\ncheck_sources = true").is_err());
        assert_eq!(c.netbios_name.as_deref(), Some("hosta"));
        assert_eq!(c.workgroup, "LAB");
        assert_eq!(c.wins_server, Some(Ipv4Addr::new(10, 99, 0, 3)));
        assert_eq!((c.port, c.name_port), (1138, 1137));
        assert_eq!(c.session_port, 1139);
        assert_eq!(DaemonConfig::parse("").unwrap(), DaemonConfig::default());
        assert!(matches!(
            DaemonConfig::parse("colour = 1"),
            Err(ConfigError::Toml(_))
        ));
        assert!(matches!(
            DaemonConfig::parse("netbios_name = \"SIXTEEN-CHARS-XX\""),
            Err(ConfigError::Value {
                key: "netbios_name",
                ..
            })
        ));
        assert!(DaemonConfig::parse("interfaces = [\"10.0.0.1/33\"]").is_err());
        assert!(DaemonConfig::parse("port = 0").is_err());
        assert!(DaemonConfig::parse("workgroup = \"*\"").is_err());
    }

    #[test]
    fn names_for_hosts() {
        assert_eq!(netbios_name_for_host("web-01.example.org"), "WEB-01");
        assert_eq!(
            netbios_name_for_host("averyveryverylonghostname"),
            "AVERYVERYVERYLO"
        );
    }
}
