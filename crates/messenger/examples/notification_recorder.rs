//! A stand-in notification server for tests: owns `org.freedesktop.Notifications` on the session
//! bus and prints every `Notify` call as one JSON line on standard output (`app`, `summary`,
//! `body`, `hints`). Prints `ready` first, once the name is owned.
//!
//!   notification_recorder [--markup]   # --markup: announce the `body-markup` capability

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

use zbus::zvariant::OwnedValue;

struct Recorder {
    markup: bool,
    next_id: AtomicU32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Recorder {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        _replaces_id: u32,
        _app_icon: &str,
        summary: &str,
        body: &str,
        _actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        expire_timeout: i32,
    ) -> u32 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let hints: Vec<&String> = hints.keys().collect();
        let line = serde_json::json!({
            "id": id,
            "app": app_name,
            "summary": summary,
            "body": body,
            "hints": hints,
            "expire_timeout": expire_timeout,
        });
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        id
    }

    fn get_capabilities(&self) -> Vec<String> {
        let mut caps = vec!["body".to_string()];
        if self.markup {
            caps.push("body-markup".to_string());
        }
        caps
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "recorder".into(),
            "mailslot tests".into(),
            "0".into(),
            "1.2".into(),
        )
    }

    fn close_notification(&self, _id: u32) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let markup = std::env::args().any(|a| a == "--markup");
    let recorder = Recorder {
        markup,
        next_id: AtomicU32::new(0),
    };
    let _conn = zbus::blocking::connection::Builder::session()?
        .name("org.freedesktop.Notifications")?
        .serve_at("/org/freedesktop/Notifications", recorder)?
        .build()?;
    println!("ready");
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}
