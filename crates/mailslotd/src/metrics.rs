//! Prometheus text on 127.0.0.1:PORT, built from the daemon's [`Status`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailslot::daemon::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The last status the daemon published (every 500 ms).
pub(crate) type Published = Arc<Mutex<Option<Status>>>;

/// The metrics text: every counter of the router, the delivery and the session service, and
/// the uptime.
pub fn prometheus_text(status: &Status) -> String {
    let mut out = String::new();
    let counters = status.counters.fields();
    let delivery = status.delivery.fields();
    let session = status.session.fields();
    for (k, v) in counters.into_iter().chain(delivery) {
        let name = format!("mailslotd_{k}_total");
        out.push_str(&format!("# TYPE {name} counter\n{name} {v}\n"));
    }
    for (k, v) in session {
        let name = format!("mailslotd_session_{k}_total");
        out.push_str(&format!("# TYPE {name} counter\n{name} {v}\n"));
    }
    out.push_str(&format!(
        "# TYPE mailslotd_uptime_seconds gauge\nmailslotd_uptime_seconds {}\n",
        status.uptime_s
    ));
    out
}

/// Answers every connection on `listener` with the metrics text (HTTP/1.0), on tasks of its own.
pub(crate) fn spawn(listener: TcpListener, published: Published) {
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let published = published.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut req)).await;
                let body = {
                    let g = published
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    g.as_ref().map(prometheus_text).unwrap_or_default()
                };
                let resp = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
}
