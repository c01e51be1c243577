//! Graceful shutdown: on SIGTERM readiness turns false (so the load balancer stops sending new
//! requests), live connections are closed with 1001 "going away" (clients reconnect to another
//! replica and resume with `?since=`), and in-flight requests finish within a deadline.

use tokio::sync::watch;

#[derive(Debug)]
pub struct Lifecycle {
    stopping: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            stopping: watch::Sender::new(false),
        }
    }
}

impl Lifecycle {
    /// Readiness false, live connections told to go away.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn stopping(&self) {
        let mut receiver = self.stopping.subscribe();
        // An error means the sender is gone, which only happens when the state is dropped.
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }
}
