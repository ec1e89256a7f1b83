//! Connection places: how many connections each user holds, all ordinary users together and
//! the admins (root, the daemon's user, the user the daemon runs as), against limits — the
//! control socket's and the directory's.

use std::collections::HashMap;

/// The places of one kind of connection: per user, all ordinary users together, and the
/// admins' reserve.
#[derive(Debug, Default)]
pub(crate) struct Places {
    per_uid: HashMap<u32, usize>,
    ordinary: usize,
    admins: usize,
}

impl Places {
    /// Takes a place for `uid` if `(per user, all ordinary users, admins)` allow one.
    pub(crate) fn take(
        &mut self,
        uid: u32,
        admin: bool,
        (per_user, all, reserve): (usize, usize, usize),
    ) -> bool {
        let mine = self.per_uid.get(&uid).copied().unwrap_or(0);
        if admin {
            if self.admins >= reserve {
                return false;
            }
            self.admins += 1;
        } else {
            if mine >= per_user || self.ordinary >= all {
                return false;
            }
            self.ordinary += 1;
        }
        *self.per_uid.entry(uid).or_insert(0) += 1;
        true
    }

    /// Gives back a place [`take`](Self::take) took.
    pub(crate) fn give_back(&mut self, uid: u32, admin: bool) {
        if let Some(n) = self.per_uid.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                self.per_uid.remove(&uid);
            }
        }
        if admin {
            self.admins -= 1;
        } else {
            self.ordinary -= 1;
        }
    }
}
