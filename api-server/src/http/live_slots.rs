//! Counts open live connections per client and per meetup, so one address (or one popular
//! meetup) cannot hold all of a replica's connections and memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use super::LiveLimits;
use super::problem::Problem;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Client(IpAddr),
    Meetup(String),
}

/// The open-connection counts of one replica.
#[derive(Debug)]
pub struct LiveSlots {
    limits: LiveLimits,
    open: Mutex<HashMap<Holder, usize>>,
}

/// One open live connection; dropping it gives the slot back.
#[derive(Debug)]
pub struct LiveSlot {
    slots: Arc<LiveSlots>,
    client: Holder,
    meetup: Holder,
}

impl LiveSlots {
    pub fn new(limits: LiveLimits) -> Self {
        Self {
            limits,
            open: Mutex::default(),
        }
    }

    /// A slot for `client` on `meetup`, or 429 problem JSON when either is at its cap.
    pub fn take(self: &Arc<Self>, client: IpAddr, meetup: &str) -> Result<LiveSlot, Problem> {
        let client = Holder::Client(client);
        let meetup = Holder::Meetup(meetup.to_string());
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = |holder: &Holder| open.get(holder).copied().unwrap_or(0);
        let refusal = if count(&client) >= self.limits.per_client {
            Some("Too many live connections from your address; close some tabs and retry.")
        } else if count(&meetup) >= self.limits.per_meetup {
            Some("This meetup has as many live viewers as this server takes; retry shortly.")
        } else {
            None
        };
        if let Some(detail) = refusal {
            metrics::counter!("live_connections_refused_total").increment(1);
            return Err(Problem {
                retry_after_secs: Some(10),
                ..Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-connections",
                    detail,
                )
            });
        }
        *open.entry(client.clone()).or_insert(0) += 1;
        *open.entry(meetup.clone()).or_insert(0) += 1;
        Ok(LiveSlot {
            slots: Arc::clone(self),
            client,
            meetup,
        })
    }

    /// Open live connections on this replica.
    pub fn total(&self) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.iter()
            .filter(|(holder, _)| matches!(holder, Holder::Meetup(_)))
            .map(|(_, count)| count)
            .sum()
    }

    /// Open connections of a client (for tests and metrics).
    pub fn open_for_client(&self, client: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&Holder::Client(client)).copied().unwrap_or(0)
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        for holder in [&self.client, &self.meetup] {
            if let Some(count) = open.get_mut(holder) {
                *count -= 1;
                if *count == 0 {
                    open.remove(holder);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn caps_per_client_and_per_meetup_and_gives_slots_back() {
        let slots = Arc::new(LiveSlots::new(LiveLimits {
            per_client: 2,
            per_meetup: 3,
            snapshot_deadline: Duration::from_secs(1),
        }));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = slots.take(a, "m1").expect("slot");
        let _second = slots.take(a, "m2").expect("slot");
        assert_eq!(slots.take(a, "m3").map(|_| ()).unwrap_err().status, 429);
        let _third = slots.take(b, "m1").expect("slot");
        let _fourth = slots.take(b, "m1").expect("slot");
        drop(first);
        // m1 now has two; a has one.
        let _fifth = slots.take(a, "m1").expect("slot");
        assert_eq!(slots.take(b, "m1").map(|_| ()).unwrap_err().status, 429);
        assert_eq!(slots.open_for_client(a), 2);
    }
}
