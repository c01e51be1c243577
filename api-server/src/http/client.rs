//! Who the client is, for rate limits and connection caps: the socket peer, or — behind proxies
//! the operator trusts — the right-most X-Forwarded-For entry that no trusted proxy added.
//!
//! Every proxy appends the address it received the request from, so the right end of the list
//! is written by our own proxies and the left end by the client (who can put anything there).
//! Walking from the right and skipping trusted hops gives the first address a trusted proxy saw
//! connect to it: that is the client, and it cannot be spoofed. IPv6 clients are keyed by their
//! /64 (one subscriber usually holds a whole /64).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// Which proxies in front of the server may be believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// The last `hops` addresses of the chain (the socket peer counts as one) are our proxies.
    pub hops: usize,
    /// Addresses in these networks are our proxies wherever they appear at the right end.
    pub networks: Vec<IpNet>,
}

impl TrustedProxies {
    fn is_trusted(&self, position_from_right: usize, ip: IpAddr) -> bool {
        position_from_right < self.hops || self.networks.iter().any(|net| net.contains(&ip))
    }

    fn trusts_anything(&self) -> bool {
        self.hops > 0 || !self.networks.is_empty()
    }

    /// The client's address given the socket peer and the request headers.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts_anything() || !self.is_trusted(0, peer) {
            return peer;
        }
        // All X-Forwarded-For lines in order, as one list (proxies may add their own line).
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut nearest = peer;
        for (index, entry) in forwarded.iter().rev().enumerate() {
            let Some(ip) = parse_forwarded_ip(entry) else {
                // A garbled entry left of our proxies: the client wrote it, so the proxy that
                // forwarded it is the best we know.
                return nearest;
            };
            let ip = canonical(ip);
            if !self.is_trusted(index + 1, ip) {
                return ip;
            }
            nearest = ip;
        }
        nearest
    }
}

/// An X-Forwarded-For entry: an address, maybe with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

/// IPv4-mapped IPv6 addresses are the IPv4 client they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client's limits are counted under: its IPv4 address, or its IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// The client of a request (its limit key), set by [`identify_client`] for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(pub IpAddr);

/// Puts the [`ClientKey`] into the request's extensions.
pub async fn identify_client(
    axum::extract::State(trusted): axum::extract::State<std::sync::Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |info| {
            info.0.ip()
        });
    let client = client_key(trusted.client_ip(peer, request.headers()));
    request.extensions_mut().insert(ClientKey(client));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("valid address")
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(
                "x-forwarded-for",
                HeaderValue::from_str(line).expect("header"),
            );
        }
        map
    }

    #[test]
    fn without_trust_the_peer_is_the_client() {
        let trust = TrustedProxies::default();
        let got = trust.client_ip(ip("10.0.0.5"), &headers(&["1.1.1.1"]));
        assert_eq!(got, ip("10.0.0.5"));
    }

    #[test]
    fn one_hop_takes_the_entry_our_proxy_added_not_the_spoofed_left_end() {
        let trust = TrustedProxies {
            hops: 1,
            networks: vec![],
        };
        // The client sent "6.6.6.6, 7.7.7.7"; HAProxy appended the real 203.0.113.9.
        let spoofed = headers(&["6.6.6.6, 7.7.7.7", "203.0.113.9"]);
        assert_eq!(trust.client_ip(ip("10.0.0.5"), &spoofed), ip("203.0.113.9"));
        let honest = headers(&["203.0.113.9"]);
        assert_eq!(trust.client_ip(ip("10.0.0.5"), &honest), ip("203.0.113.9"));
        // No header at all: the proxy itself is all we know.
        assert_eq!(
            trust.client_ip(ip("10.0.0.5"), &HeaderMap::new()),
            ip("10.0.0.5")
        );
        // Garbage that the client wrote is never taken.
        assert_eq!(
            trust.client_ip(ip("10.0.0.5"), &headers(&["nonsense, 203.0.113.9:4711"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn cidrs_skip_every_proxy_of_ours_and_only_those() {
        let trust = TrustedProxies {
            hops: 0,
            networks: vec!["10.0.0.0/8".parse().expect("net")],
        };
        let chain = headers(&["6.6.6.6, 198.51.100.7, 10.1.2.3"]);
        assert_eq!(trust.client_ip(ip("10.0.0.5"), &chain), ip("198.51.100.7"));
        // A peer outside the trusted networks is taken as is, whatever it claims.
        assert_eq!(trust.client_ip(ip("192.0.2.1"), &chain), ip("192.0.2.1"));
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
