//! What the protocol logic needs to know of the host: its names and interfaces
//! ([`RouterConfig`]). The daemon's configuration file, which produces it, is the daemon's
//! (crate `mailslotd`).

use std::net::Ipv4Addr;

use mailslot_proto::NetbiosName;

/// One IPv4 interface: our address and its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// Our address.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// The subnet's broadcast address.
    pub broadcast: Ipv4Addr,
}

impl Interface {
    /// An interface from address and prefix length.
    pub fn new(ip: Ipv4Addr, prefix: u8) -> Self {
        let prefix = prefix.min(32);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        Self {
            ip,
            prefix,
            broadcast: Ipv4Addr::from(u32::from(ip) | !mask),
        }
    }

    /// Parses `"10.0.0.5/24"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let prefix: u8 = prefix.parse().map_err(|e| format!("{s:?}: {e}"))?;
        if prefix > 32 {
            return Err(format!("{s:?}: prefix above 32"));
        }
        Ok(Self::new(ip, prefix))
    }

    /// Is `ip` on this subnet?
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        u32::from(ip) & mask == u32::from(self.ip) & mask
    }
}

/// What the protocol logic needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Our computer name, upper case.
    pub netbios_name: String,
    /// Our workgroup, upper case.
    pub workgroup: String,
    /// Our interfaces (at least one).
    pub interfaces: Vec<Interface>,
    /// WINS server, if any.
    pub wins_server: Option<Ipv4Addr>,
    /// Datagram port of every node (ours and peers').
    pub port: u16,
    /// Name-service port of every node.
    pub name_port: u16,
    /// NetBIOS session service port of every node (TCP; 139): first-class writes to other
    /// hosts go there.
    pub session_port: u16,
    /// NetBIOS scope.
    pub scope: String,
    /// Start of the transaction and datagram id sequences.
    pub seed: u16,
    /// Drop (and count in `dropped_spoofed_source`) a datagram whose header names a source IP
    /// other than the packet's source address (default `true`). Only a datagram relayed by a
    /// NetBIOS datagram distribution server (NBDD) legitimately differs.
    pub check_source: bool,
    /// Run beside Samba's `nmbd`, which owns the names and UDP 137 (default `false`): register,
    /// defend and answer nothing on the name service, hold the names nmbd holds for this host
    /// (the computer name, [`aliases`](Self::aliases), the workgroup), take queries' answers
    /// on whatever port they were sent from, and drop writes to the mailslots nmbd keeps for
    /// itself ([`nmbd::is_kept_by_nmbd`](crate::nmbd::is_kept_by_nmbd)).
    pub beside_nmbd: bool,
    /// Further computer names of this host (Samba's `netbios aliases`), upper case. Held like
    /// the computer name.
    pub aliases: Vec<String>,
    /// Further Messenger names (`NAME<03>`, unique), upper case: registered and defended like
    /// the computer name (standalone; beside nmbd they are Samba's to register).
    pub messenger_names: Vec<String>,
}

impl RouterConfig {
    /// A configuration with default ports, no WINS, no scope.
    pub fn new(netbios_name: &str, workgroup: &str, interfaces: Vec<Interface>) -> Self {
        Self {
            netbios_name: netbios_name.to_ascii_uppercase(),
            workgroup: workgroup.to_ascii_uppercase(),
            interfaces,
            wins_server: None,
            port: mailslot_proto::datagram::DATAGRAM_PORT,
            name_port: mailslot_proto::nbns::NAME_SERVICE_PORT,
            session_port: mailslot_proto::session::SESSION_PORT,
            scope: String::new(),
            seed: 1,
            check_source: true,
            beside_nmbd: false,
            aliases: Vec::new(),
            messenger_names: Vec::new(),
        }
    }

    /// `COMPUTER<suffix>`.
    pub fn computer(&self, suffix: u8) -> NetbiosName {
        NetbiosName::new(&self.netbios_name, suffix).unwrap_or(NetbiosName::WILDCARD)
    }

    /// `WORKGROUP<suffix>`.
    pub fn workgroup_name(&self, suffix: u8) -> NetbiosName {
        NetbiosName::new(&self.workgroup, suffix).unwrap_or(NetbiosName::WILDCARD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces() {
        let i = Interface::parse("10.99.0.2/24").unwrap();
        assert_eq!(i.broadcast, Ipv4Addr::new(10, 99, 0, 255));
        assert!(i.contains(Ipv4Addr::new(10, 99, 0, 77)));
        assert!(!i.contains(Ipv4Addr::new(10, 98, 0, 77)));
        assert_eq!(
            Interface::new(Ipv4Addr::new(192, 168, 1, 9), 16).broadcast,
            Ipv4Addr::new(192, 168, 255, 255)
        );
        assert!(Interface::parse("10.0.0.1/33").is_err());
    }
}
