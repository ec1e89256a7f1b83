//! Prometheus text on 127.0.0.1:PORT, built from the daemon's [`Status`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailslot::daemon::{DirectoryStatus, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::debug;

/// The last status the daemon published (every 500 ms).
pub(crate) type Published = Arc<Mutex<Option<Status>>>;

/// The metrics text: every counter of the router, the delivery and the session service, the
/// mailslot directory's when it runs (`mailslotd_directory_…`: gauges for what holds now, the
/// [`DirectoryStatus::GAUGES`], `…_total` counters for the rest), and the uptime.
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
    if let Some(directory) = &status.directory {
        for (k, v) in directory.fields() {
            if DirectoryStatus::GAUGES.contains(&k) {
                let name = format!("mailslotd_directory_{k}");
                out.push_str(&format!("# TYPE {name} gauge\n{name} {v}\n"));
            } else {
                let name = format!("mailslotd_directory_{k}_total");
                out.push_str(&format!("# TYPE {name} counter\n{name} {v}\n"));
            }
        }
    }
    out.push_str(&format!(
        "# TYPE mailslotd_uptime_seconds gauge\nmailslotd_uptime_seconds {}\n",
        status.uptime_s
    ));
    out
}

/// Metrics connections served at once; more are closed as soon as they are accepted. Each is
/// held at most [`CONNECTION_TIME`] for its request and as long again for the answer, so a
/// scraper that connects and says nothing cannot make the daemon hold descriptors without end.
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take to send its request, and then to take the answer.
const CONNECTION_TIME: Duration = Duration::from_secs(2);
/// How long the loop waits after a failed `accept` (out of descriptors and the like).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Answers every connection on `listener` with the metrics text (HTTP/1.0), on tasks of its own,
/// at most [`MAX_CONNECTIONS`] at once.
pub(crate) fn spawn(listener: TcpListener, published: Published) {
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let mut s = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // The error stays until a descriptor is free again: retrying at once would
                    // spin on the daemon's only runtime thread.
                    debug!("metrics accept failed: {e}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            // No place: closed at once (dropped), rather than queued behind the others.
            let Ok(place) = places.clone().try_acquire_owned() else {
                continue;
            };
            let published = published.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let _ = tokio::time::timeout(CONNECTION_TIME, s.read(&mut req)).await;
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
                // A client that does not read does not keep its place either.
                let _ = tokio::time::timeout(CONNECTION_TIME, s.write_all(resp.as_bytes())).await;
                drop(place);
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::net::TcpStream;

    use super::*;

    /// A connection beyond [`MAX_CONNECTIONS`] is closed at once rather than held (it would
    /// otherwise wait out the request timeout like the others), and once the idle connections
    /// are gone a scrape is answered again.
    #[tokio::test]
    async fn idle_connections_beyond_the_bound_are_closed_and_scrapes_go_on() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn(listener, Published::default());
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        // The loop accepts in order: these hold every place, so the next is turned away.
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(1), extra.read(&mut buf))
            .await
            .expect("a connection beyond the bound was held instead of closed");
        assert_eq!(read.unwrap_or(0), 0, "answered beyond the bound");
        drop(idle);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await;
            let mut resp = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut resp)).await;
            if resp.starts_with(b"HTTP/1.0 200 OK") {
                break;
            }
            assert!(Instant::now() < deadline, "no scrape answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
