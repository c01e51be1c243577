//! The watches that wake the reconciler, each with a backoff of its own.
//!
//! kube-runtime's `Controller::new(..).owns(..)` merges every watch into one trigger stream behind
//! a single backoff, so one watch's error (every watch sees `410 Gone` after an API-server restart)
//! paused all of them for up to a minute at a time, and the platform cache stayed stale meanwhile
//! (kube-rs/kube#763). Here each watch retries on its own short backoff and its errors are logged
//! and dropped before the merge, so the controller-level backoff never engages.

use std::fmt::Display;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;
use tracing::{debug, info, warn};

/// First retry of a failed watch.
const MIN_DELAY: Duration = Duration::from_millis(500);
/// Longest pause between retries: an API server that is back is noticed within this time.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Retry pacing of one watch: 0.5 s doubling up to 5 s, reset by the next event that arrives.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: MIN_DELAY }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        Some(current)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = MIN_DELAY;
    }
}

/// At most this many characters of an error go to the log: a decode error of a list may carry the
/// whole response body.
const MAX_LOGGED_ERROR: usize = 300;

/// `error` as one short line.
pub fn short_error(error: &impl Display) -> String {
    let text = error.to_string();
    match text.char_indices().nth(MAX_LOGGED_ERROR) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Drop the errors of one watch after logging each new cause once (the watch itself retries
/// after its backoff), and say when it works again.
pub fn logged<K>(
    watch: &'static str,
    stream: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
{
    let mut failing: Option<String> = None;
    stream.filter_map(move |item| {
        let passed = match item {
            Ok(object) => {
                if failing.take().is_some() {
                    info!(watch, "watch recovered");
                }
                Some(Ok(object))
            }
            Err(error) => {
                let cause = short_error(&error);
                if failing.as_deref() == Some(cause.as_str()) {
                    debug!(watch, error = %cause, "watch still failing");
                } else {
                    warn!(watch, error = %cause, "watch failed; it retries on its own backoff");
                }
                failing = Some(cause);
                None
            }
        };
        futures::future::ready(passed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_short_capped_and_resets() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<Duration> = backoff.by_ref().take(6).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 5000, 5000].map(Duration::from_millis)
        );
        backoff.reset();
        assert_eq!(backoff.next(), Some(MIN_DELAY));
    }

    #[test]
    fn long_errors_are_cut() {
        let long = "x".repeat(10_000);
        let cut = short_error(&long);
        assert_eq!(cut.chars().count(), MAX_LOGGED_ERROR + 1);
        assert_eq!(short_error(&"short"), "short");
    }

    #[tokio::test]
    async fn errors_never_reach_the_merged_stream() {
        let items: Vec<Result<u32, watcher::Error>> = vec![
            Ok(1),
            Err(watcher::Error::NoResourceVersion),
            Err(watcher::Error::NoResourceVersion),
            Ok(2),
        ];
        let passed: Vec<u32> = logged("test", futures::stream::iter(items))
            .filter_map(|item| futures::future::ready(item.ok()))
            .collect()
            .await;
        assert_eq!(passed, [1, 2]);
    }
}
