//! Who may **serve** a name: the system's name policy, in the manner of D-Bus's policy for bus
//! names.
//!
//! A mailslot name belongs to whoever creates it first. For most names that is fine; a service
//! whose writers send it something that matters (credentials, commands, logs) wants a guarantee
//! that the process reading its name is the service and not a local user who bound the name
//! first. The policy file gives that guarantee:
//!
//! ```toml
//! [[serve]]
//! name = '\\.\mailslot\svc\*'   # a name, or a pattern whose final * matches the rest
//! users = ["root", 990]             # user names or numeric uids
//! groups = ["svc"]                  # group names or numeric gids
//! ```
//!
//! - **Where**: [`SYSTEM_POLICY`] (`/etc/mailslot/policy.toml`), or the file named by the
//!   environment variable [`POLICY_ENV`] (`MAILSLOT_POLICY`) when it is set and not empty. A
//!   missing file means no policy (every name first come, first served). A file that cannot be
//!   read or parsed is an error of every `create` and every local `open` ([`PolicyError`]), never
//!   a silent "allow all".
//! - **Matching**: names are compared as mailslot names are, ASCII case-insensitively, in any
//!   accepted local form (`\\.\mailslot\a`, `/mailslot/a`, …). A final `*` matches the rest of
//!   the name (any levels); `*` anywhere else is an error. When several rules match, the most
//!   specific decides: an exact name before any pattern, a longer pattern before a shorter one;
//!   rules with the same pattern add up.
//! - **Who**: a process may serve a matching name when its user is in `users`, or its primary
//!   group or one of its supplementary groups is in `groups`. Root (uid 0) may always serve
//!   (root can read any process's memory, so excluding it would protect nothing). A rule with
//!   no users and no groups reserves its names for root. User and group names are looked up when
//!   checked (`getpwnam_r`, `getgrnam_r`); a name that does not exist matches nobody.
//! - **Names outside every rule** keep first-come behaviour.
//!
//! Writers ([`crate::MailslotWriter::open`], and so the daemon's deliveries and the FUSE view's
//! writes too) check the owner's kernel credentials (`SO_PEERCRED`, `SO_PEERGROUPS`) against the
//! policy right after connecting, before they send anything, and refuse an owner it does not
//! allow ([`crate::OpenError::OwnerNotAllowed`]). [`crate::Mailslot::create`] refuses early a
//! caller the policy excludes ([`crate::CreateError::NotAllowed`]); that is a courtesy, the
//! writers' check is the protection.
//!
//! Matching is a pure function ([`Policy::verdict`] with a [`Lookup`]); [`Policy::load`] reads the
//! file (cached until the file changes).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use thiserror::Error;

use crate::name::Name;

/// The system's policy file.
pub const SYSTEM_POLICY: &str = "/etc/mailslot/policy.toml";
/// Environment variable naming another policy file (tests, non-standard installations).
pub const POLICY_ENV: &str = "MAILSLOT_POLICY";

/// Error reading or parsing a policy file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file exists but cannot be read.
    #[error("cannot read the mailslot name policy {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("invalid mailslot name policy {path}: {reason}")]
    Invalid {
        /// The file (empty for [`Policy::from_toml`]).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A user or a group in a rule: a numeric id, or a name looked up when checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A numeric uid or gid.
    Id(u32),
    /// A user or group name.
    Name(String),
}

/// The names a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// One name (its comparison key).
    Exact(String),
    /// Every name whose comparison key starts with this (a final `*`).
    Prefix(String),
}

impl Pattern {
    /// Parses a name or a pattern with a final `*`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (body, wild) = match s.strip_suffix('*') {
            Some(b) => (b, true),
            None => (s, false),
        };
        if body.contains('*') {
            return Err(format!(
                "{s:?}: only a final * is a wildcard in a policy name"
            ));
        }
        if !wild {
            let n = Name::parse(s).map_err(|e| format!("{s:?}: {e}"))?;
            return if n.is_local() {
                Ok(Self::Exact(n.key()))
            } else {
                Err(format!(
                    "{s:?}: a policy names local mailslots (\\\\.\\mailslot\\...)"
                ))
            };
        }
        if body.is_empty() {
            return Ok(Self::Prefix(String::new()));
        }
        // `body` ends where the rest of a name starts: parse it with one character standing in
        // for the rest, then drop that character from the key.
        let n = Name::parse(&format!("{body}x")).map_err(|e| format!("{s:?}: {e}"))?;
        if !n.is_local() {
            return Err(format!(
                "{s:?}: a policy names local mailslots (\\\\.\\mailslot\\...)"
            ));
        }
        let mut key = n.key();
        key.pop();
        Ok(Self::Prefix(key))
    }

    /// Whether the name with comparison key `key` matches; `Some(specificity)` if it does
    /// (higher is more specific).
    fn matches(&self, key: &str) -> Option<usize> {
        match self {
            Self::Exact(k) => (k == key).then_some(usize::MAX),
            Self::Prefix(p) => key.starts_with(p.as_str()).then_some(p.len()),
        }
    }
}

/// One `[[serve]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The names it is about.
    pub pattern: Pattern,
    /// Users who may serve them.
    pub users: Vec<Principal>,
    /// Groups whose members may serve them.
    pub groups: Vec<Principal>,
}

/// Looks up user and group names (the system's: [`SystemLookup`]; tests give their own).
pub trait Lookup {
    /// The uid of user `name`.
    fn uid(&self, name: &str) -> Option<u32>;
    /// The gid of group `name`.
    fn gid(&self, name: &str) -> Option<u32>;
}

/// The system's user and group database (`getpwnam_r`, `getgrnam_r`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn uid(&self, name: &str) -> Option<u32> {
        crate::sys::uid_of_user(name)
    }

    fn gid(&self, name: &str) -> Option<u32> {
        crate::sys::gid_of_group(name)
    }
}

/// What the policy says about a name and a would-be server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No rule is about this name: first come, first served.
    Unrestricted,
    /// A rule is about this name and admits the server.
    Allowed,
    /// A rule is about this name and does not admit the server.
    Denied,
}

impl Verdict {
    /// False only for [`Verdict::Denied`].
    pub fn is_allowed(self) -> bool {
        self != Self::Denied
    }
}

/// A parsed policy: the `[[serve]]` rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    #[serde(default)]
    serve: Vec<RuleForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleForm {
    name: String,
    #[serde(default)]
    users: Vec<IdForm>,
    #[serde(default)]
    groups: Vec<IdForm>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdForm {
    Num(u32),
    Text(String),
}

impl IdForm {
    fn principal(self, what: &str) -> Result<Principal, String> {
        match self {
            Self::Num(n) => Ok(Principal::Id(n)),
            Self::Text(t) if t.is_empty() => Err(format!("an empty {what} name")),
            Self::Text(t) if t.bytes().all(|b| b.is_ascii_digit()) => t
                .parse()
                .map(Principal::Id)
                .map_err(|_| format!("{what} id {t} is out of range")),
            Self::Text(t) => Ok(Principal::Name(t)),
        }
    }
}

impl Policy {
    /// A policy with these rules.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether the policy has no rule (every name first come, first served).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Parses the text of a policy file.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        Self::parse_text(text, Path::new(""))
    }

    fn parse_text(text: &str, path: &Path) -> Result<Self, PolicyError> {
        let invalid = |reason: String| PolicyError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let file: FileForm = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut rules = Vec::with_capacity(file.serve.len());
        for r in file.serve {
            let pattern = Pattern::parse(&r.name).map_err(&invalid)?;
            let users = r
                .users
                .into_iter()
                .map(|u| u.principal("user"))
                .collect::<Result<_, _>>()
                .map_err(&invalid)?;
            let groups = r
                .groups
                .into_iter()
                .map(|g| g.principal("group"))
                .collect::<Result<_, _>>()
                .map_err(&invalid)?;
            rules.push(Rule {
                pattern,
                users,
                groups,
            });
        }
        Ok(Self { rules })
    }

    /// Reads the policy file at `path`; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<Self>, PolicyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse_text(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PolicyError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The policy file in effect: `$MAILSLOT_POLICY` if set and not empty, else
    /// [`SYSTEM_POLICY`].
    pub fn path() -> PathBuf {
        match std::env::var_os(POLICY_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(SYSTEM_POLICY),
        }
    }

    /// The policy in effect (see [`path`](Self::path)); an empty policy when there is no file.
    /// Parsed once and kept until the file changes (one `stat` per call).
    pub fn load() -> Result<Arc<Self>, PolicyError> {
        load_cached(&Self::path())
    }

    /// What the policy says about a process of user `uid`, member of `groups` (its primary and
    /// supplementary groups), serving the local name `name`. Pure: names in rules are looked up
    /// with `lookup`.
    pub fn verdict(&self, name: &Name, uid: u32, groups: &[u32], lookup: &dyn Lookup) -> Verdict {
        let key = name.key();
        let mut best: Option<usize> = None;
        for r in &self.rules {
            if let Some(s) = r.pattern.matches(&key) {
                best = best.max(Some(s));
            }
        }
        let Some(best) = best else {
            return Verdict::Unrestricted;
        };
        if uid == 0 {
            return Verdict::Allowed;
        }
        let deciding = self
            .rules
            .iter()
            .filter(|r| r.pattern.matches(&key) == Some(best));
        for r in deciding {
            let user_ok = r.users.iter().any(|u| match u {
                Principal::Id(id) => *id == uid,
                Principal::Name(n) => lookup.uid(n) == Some(uid),
            });
            let group_ok = || {
                r.groups.iter().any(|g| match g {
                    Principal::Id(id) => groups.contains(id),
                    Principal::Name(n) => lookup.gid(n).is_some_and(|id| groups.contains(&id)),
                })
            };
            if user_ok || group_ok() {
                return Verdict::Allowed;
            }
        }
        Verdict::Denied
    }

    /// Whether a rule is about `name` (a name outside every rule is first come, first served).
    pub fn covers(&self, name: &Name) -> bool {
        let key = name.key();
        self.rules.iter().any(|r| r.pattern.matches(&key).is_some())
    }

    /// [`verdict`](Self::verdict) with the system's user and group database.
    pub fn check(&self, name: &Name, uid: u32, groups: &[u32]) -> Verdict {
        self.verdict(name, uid, groups, &SystemLookup)
    }
}

/// What identifies a version of the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

type Cache = HashMap<PathBuf, (Stamp, Arc<Policy>)>;

fn cache() -> &'static Mutex<Cache> {
    static CACHE: std::sync::OnceLock<Mutex<Cache>> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn load_cached(path: &Path) -> Result<Arc<Policy>, PolicyError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Arc::default()),
        Err(source) => {
            return Err(PolicyError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let stamp = Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
    };
    let mut c = cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((s, p)) = c.get(path) {
        if *s == stamp {
            return Ok(p.clone());
        }
    }
    let policy = Arc::new(Policy::read(path)?.unwrap_or_default());
    c.insert(path.to_path_buf(), (stamp, policy.clone()));
    Ok(policy)
}

/// The user and the groups (primary and supplementary) of process `pid`, from
/// `/proc/<pid>/status` (`Uid:` effective, `Gid:` effective, `Groups:`); `None` when the process
/// is gone or hidden.
pub fn process_credentials(pid: u32) -> Option<(u32, Vec<u32>)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::to_string)
    };
    let nth = |line: &str, i: usize| line.split_whitespace().nth(i)?.parse::<u32>().ok();
    let uid = nth(&field("Uid:")?, 1)?;
    let gid = nth(&field("Gid:")?, 1)?;
    let mut groups = vec![gid];
    if let Some(line) = field("Groups:") {
        groups.extend(
            line.split_whitespace()
                .filter_map(|g| g.parse::<u32>().ok()),
        );
    }
    Some((uid, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Lookup for Fake {
        fn uid(&self, name: &str) -> Option<u32> {
            match name {
                "root" => Some(0),
                "svc" => Some(990),
                "alice" => Some(1000),
                _ => None,
            }
        }
        fn gid(&self, name: &str) -> Option<u32> {
            match name {
                "svcgroup" => Some(991),
                "staff" => Some(50),
                _ => None,
            }
        }
    }

    fn n(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    const EXAMPLE: &str = r#"
        [[serve]]
        name = '\\.\mailslot\svc\*'
        users = ["svc", 1234, "4321"]
        groups = ["svcgroup"]

        [[serve]]
        name = '\\.\mailslot\svc\open\*'
        users = []
        groups = ["staff"]

        [[serve]]
        name = '/mailslot/Exact/One'
        users = ["alice"]

        [[serve]]
        name = '\\.\mailslot\reserved'

        [[serve]]
        name = '\\.\mailslot\ghost\*'
        users = ["no-such-user"]
        groups = ["no-such-group"]
    "#;

    fn example() -> Policy {
        Policy::from_toml(EXAMPLE).unwrap()
    }

    #[test]
    fn parses_names_patterns_and_ids() {
        let p = example();
        assert_eq!(p.rules().len(), 5);
        assert_eq!(p.rules()[0].pattern, Pattern::Prefix("svc\\".into()));
        assert_eq!(
            p.rules()[0].users,
            vec![
                Principal::Name("svc".into()),
                Principal::Id(1234),
                Principal::Id(4321)
            ]
        );
        assert_eq!(p.rules()[2].pattern, Pattern::Exact("exact\\one".into()));
        assert!(p.rules()[3].users.is_empty() && p.rules()[3].groups.is_empty());
        assert!(Policy::from_toml("").unwrap().is_empty());
    }

    #[test]
    fn patterns() {
        assert_eq!(Pattern::parse("*").unwrap(), Pattern::Prefix(String::new()));
        assert_eq!(
            Pattern::parse(r"\\.\mailslot\*").unwrap(),
            Pattern::Prefix(String::new())
        );
        assert_eq!(
            Pattern::parse(r"\\.\MAILSLOT\Svc*").unwrap(),
            Pattern::Prefix("svc".into())
        );
        assert_eq!(
            Pattern::parse("//./mailslot/A/b").unwrap(),
            Pattern::Exact("a\\b".into())
        );
        assert!(Pattern::parse(r"\\.\mailslot\a*b").is_err());
        assert!(Pattern::parse(r"\\.\mailslot\a**").is_err());
        assert!(Pattern::parse(r"\\HOST\mailslot\a").is_err());
        assert!(Pattern::parse(r"\\*\mailslot\a*").is_err());
        assert!(Pattern::parse(r"not a name").is_err());
    }

    #[test]
    fn broken_files_are_errors() {
        for bad in [
            "[[serve]]\nusers = [\"root\"]\n",            // no name
            "[[serve]]\nname = 'x'\n",                    // not a mailslot name
            "[[serve]]\nname = '\\\\.\\mailslot\\a*b'\n", // inner *
            "[[serve]]\nname = '\\\\.\\mailslot\\a'\nuser = [\"r\"]\n", // unknown key
            "[[serve]]\nname = '\\\\.\\mailslot\\a'\nusers = [-1]\n", // negative id
            "[[serve]]\nname = '\\\\.\\mailslot\\a'\nusers = [\"\"]\n", // empty name
            "[[serve]]\nname = '\\\\.\\mailslot\\a'\nusers = [\"99999999999\"]\n",
            "[[serve]]\nname = '\\\\.\\mailslot\\a'\nusers = \"root\"\n", // not a list
            "[serve\n",                                                   // not TOML
            "[[other]]\nname = 'x'\n",                                    // unknown table
        ] {
            let e = Policy::from_toml(bad).expect_err(bad);
            assert!(matches!(e, PolicyError::Invalid { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn names_outside_every_rule_are_first_come() {
        let p = example();
        for name in [
            r"\\.\mailslot\other",
            r"\\.\mailslot\svcx",
            r"\\.\mailslot\exact",
        ] {
            assert!(!p.covers(&n(name)));
            assert_eq!(
                p.verdict(&n(name), 65534, &[65534], &Fake),
                Verdict::Unrestricted
            );
        }
        assert_eq!(
            Policy::default().verdict(&n(r"\\.\mailslot\svc\a"), 65534, &[], &Fake),
            Verdict::Unrestricted
        );
    }

    #[test]
    fn users_and_groups_by_name_and_id() {
        let p = example();
        let svc = n(r"\\.\mailslot\SVC\Deep\Name");
        assert_eq!(p.verdict(&svc, 990, &[990], &Fake), Verdict::Allowed); // "svc"
        assert_eq!(p.verdict(&svc, 1234, &[], &Fake), Verdict::Allowed); // numeric
        assert_eq!(p.verdict(&svc, 4321, &[], &Fake), Verdict::Allowed); // numeric string
        assert_eq!(
            p.verdict(&svc, 65534, &[65534, 991], &Fake),
            Verdict::Allowed
        ); // group
        assert_eq!(p.verdict(&svc, 65534, &[65534], &Fake), Verdict::Denied);
        assert_eq!(p.verdict(&svc, 1000, &[1000, 50], &Fake), Verdict::Denied);
        // Root always.
        assert_eq!(p.verdict(&svc, 0, &[0], &Fake), Verdict::Allowed);
        assert_eq!(
            p.verdict(&n(r"\\.\mailslot\reserved"), 0, &[], &Fake),
            Verdict::Allowed
        );
        assert_eq!(
            p.verdict(&n(r"\\.\mailslot\RESERVED"), 990, &[991], &Fake),
            Verdict::Denied
        );
        // Exact names, any form, any case.
        let exact = n("/mailslot/exact/ONE");
        assert_eq!(p.verdict(&exact, 1000, &[], &Fake), Verdict::Allowed);
        assert_eq!(p.verdict(&exact, 990, &[], &Fake), Verdict::Denied);
        // Unknown names match nobody.
        let ghost = n(r"\\.\mailslot\ghost\x");
        assert_eq!(p.verdict(&ghost, 65534, &[65534], &Fake), Verdict::Denied);
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let p = example();
        let open = n(r"\\.\mailslot\svc\open\x");
        // staff may serve svc\open\*, svc may not (the longer pattern decides).
        assert_eq!(p.verdict(&open, 1000, &[50], &Fake), Verdict::Allowed);
        assert_eq!(p.verdict(&open, 990, &[991], &Fake), Verdict::Denied);
        // Rules with the same pattern add up.
        let q = Policy::from_toml(
            "[[serve]]\nname='\\\\.\\mailslot\\a\\*'\nusers=[1]\n\
             [[serve]]\nname='\\\\.\\mailslot\\a\\*'\nusers=[2]\n",
        )
        .unwrap();
        let a = n(r"\\.\mailslot\a\b");
        assert_eq!(q.verdict(&a, 1, &[], &Fake), Verdict::Allowed);
        assert_eq!(q.verdict(&a, 2, &[], &Fake), Verdict::Allowed);
        assert_eq!(q.verdict(&a, 3, &[], &Fake), Verdict::Denied);
    }

    #[test]
    fn reading_files() {
        let dir = std::env::temp_dir().join(format!("mailslot-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.toml");
        assert_eq!(Policy::read(&missing).unwrap(), None);
        assert!(load_cached(&missing).unwrap().is_empty());
        let file = dir.join("policy.toml");
        std::fs::write(&file, EXAMPLE).unwrap();
        assert_eq!(*load_cached(&file).unwrap(), example());
        // A change is seen (the size differs).
        std::fs::write(&file, "[[serve]]\nname = '\\\\.\\mailslot\\only'\n").unwrap();
        assert_eq!(load_cached(&file).unwrap().rules().len(), 1);
        std::fs::write(&file, "[[serve]\n").unwrap();
        assert!(matches!(
            load_cached(&file),
            Err(PolicyError::Invalid { .. })
        ));
        // A directory is not a file: an error, not "no policy".
        assert!(matches!(load_cached(&dir), Err(PolicyError::Read { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shipped_example_parses_commented_and_uncommented() {
        let text = include_str!("../../../dist/policy.toml");
        assert!(Policy::from_toml(text).unwrap().is_empty());
        let rule_line = |l: &str| {
            ["[[serve]]", "name =", "users =", "groups ="]
                .iter()
                .any(|k| l.starts_with(k))
        };
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rule_line(rest) => format!("{rest}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        let p = Policy::from_toml(&uncommented).unwrap();
        assert_eq!(p.rules().len(), 4);
        let svc = n(r"\\.\mailslot\MyService\jobs");
        assert_eq!(p.verdict(&svc, 0, &[], &Fake), Verdict::Allowed);
        assert_eq!(p.verdict(&svc, 65534, &[65534], &Fake), Verdict::Denied);
    }

    #[test]
    fn credentials_of_this_process() {
        let (uid, groups) = process_credentials(std::process::id()).unwrap();
        assert_eq!(uid, crate::sys::geteuid());
        assert!(!groups.is_empty());
    }
}
