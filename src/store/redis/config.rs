//! How to reach Redis: the URL (a secret, never printed) and the store's
//! knobs. Parsing the URL into one node or a Cluster's seed nodes lives
//! here so its errors can be checked never to quote the URL.

use std::str::FromStr;
use std::time::Duration;

/// A Redis URL, which may hold a password: never printed. `Debug` is
/// redacted, there is no `Display`, and parsing never fails (so command-line
/// errors cannot echo it); it is checked when the store is built, with
/// messages that do not quote it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for the connection only.
    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(<redacted>)")
    }
}

impl FromStr for RedisUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// How to reach Redis and how the store behaves.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` for one Redis;
    /// `redis+cluster://[user:password@]host:port[,host:port…]` or several
    /// comma-separated `redis://` URLs for a Cluster.
    pub url: RedisUrl,
    /// First part of every key (`[A-Za-z0-9_.-]+`), so an ACL can be limited
    /// to `~<prefix>:*`.
    pub prefix: String,
    /// Number of customer shards (hash tags). Fixed for the life of the data:
    /// replicas with another count refuse to run.
    pub shards: u16,
    /// Per-command response timeout: how long before redis-rs abandons a
    /// command (callers stop waiting much sooner; see the docs of the
    /// `redis` module).
    pub response_timeout: Duration,
    /// Per-connection-attempt timeout.
    pub connect_timeout: Duration,
    /// Upper bound on any store call, including waiting for a reconnect.
    pub op_timeout: Duration,
    /// How long a decision waits for its commit before failing closed: below
    /// the service's 50 ms store deadline, so the degraded answer is still
    /// rendered in time. The commit itself then finishes in the background.
    pub call_budget: Duration,
    /// Age at which a cached window snapshot is refreshed; zero: exact reads.
    pub window_snapshot_ttl: Duration,
    /// How long a replica remembers that today's budget pool ran dry, and
    /// refuses by budget without asking the pool again (zero: always ask).
    pub dry_pool_memory: Duration,
}

impl RedisConfig {
    pub fn new(url: RedisUrl) -> Self {
        Self {
            url,
            prefix: "ft".into(),
            shards: 16,
            response_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            op_timeout: Duration::from_millis(250),
            call_budget: Duration::from_millis(35),
            window_snapshot_ttl: Duration::from_millis(500),
            dry_pool_memory: Duration::from_millis(250),
        }
    }

    /// Scales the waits to the service's store deadline (the defaults
    /// above suit the default 50 ms): a commit is waited for 70 % of it, so
    /// the degraded answer is still rendered in time; a store call and a
    /// command may take a few deadlines before they are given up (never
    /// less than the defaults, which ride out a CPU stall). Raising the
    /// deadline is how a replica whose Redis is a long round trip away
    /// still grants: one round trip per decision on one Redis, three for a
    /// grant on a Cluster.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.call_budget = deadline.mul_f64(0.7);
        self.op_timeout = Duration::from_millis(250).max(deadline * 2);
        self.response_timeout = Duration::from_secs(1).max(deadline * 4);
        self
    }
}

/// Why a store could not be built (never quotes the URL).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub(super) String);

pub(super) enum Target {
    Single(String),
    Cluster(Vec<String>),
}

/// Splits the URL into one node or cluster seed nodes.
pub(super) fn parse_target(url: &str) -> Result<Target, ConfigError> {
    let bad = |why: &str| ConfigError(format!("REDIS_URL is not usable: {why} (value not shown)"));
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("redis+cluster://") {
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), rest),
        };
        let hosts = hosts.trim_end_matches('/');
        if hosts.is_empty() || hosts.contains('/') {
            return Err(bad("a cluster URL is redis+cluster://[user:password@]host:port[,host:port…] without a database"));
        }
        let nodes: Vec<String> = hosts
            .split(',')
            .map(|h| format!("redis://{auth}{}", h.trim()))
            .collect();
        return Ok(Target::Cluster(nodes));
    }
    let parts: Vec<&str> = url.split(',').map(str::trim).collect();
    for p in &parts {
        if p.starts_with("rediss://") {
            return Err(bad("TLS (rediss://) is not compiled into this build"));
        }
        if !p.starts_with("redis://") {
            return Err(bad("expected redis:// or redis+cluster://"));
        }
    }
    if parts.len() == 1 {
        Ok(Target::Single(parts[0].to_string()))
    } else {
        Ok(Target::Cluster(
            parts.into_iter().map(String::from).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_become_seed_nodes_with_their_credentials() {
        match parse_target("redis+cluster://u:p@127.0.0.1:7000,127.0.0.1:7001").unwrap() {
            Target::Cluster(nodes) => assert_eq!(
                nodes,
                ["redis://u:p@127.0.0.1:7000", "redis://u:p@127.0.0.1:7001"]
            ),
            Target::Single(_) => panic!("expected a cluster"),
        }
        assert!(matches!(
            parse_target("redis://a:1,redis://b:2").unwrap(),
            Target::Cluster(n) if n.len() == 2
        ));
        assert!(matches!(
            parse_target("redis://127.0.0.1:6379/0").unwrap(),
            Target::Single(_)
        ));
    }

    #[test]
    fn url_errors_and_debug_output_never_quote_the_url() {
        let secret = "redis+cluster://u:CANARY-REDIS-x@h:1/0";
        let e = parse_target(secret).err().expect("a database is refused");
        assert!(!e.to_string().contains("CANARY"), "{e}");
        let e = parse_target("http://u:CANARY-REDIS-x@h:1").err().unwrap();
        assert!(!e.to_string().contains("CANARY"), "{e}");
        let url = RedisUrl::new("redis://u:CANARY-REDIS-x@h:1");
        assert!(!format!("{url:?}").contains("CANARY"));
        let cfg = RedisConfig::new(url);
        assert!(!format!("{cfg:?}").contains("CANARY"));
    }
}
