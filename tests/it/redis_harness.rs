//! Real Redis for tests, on loopback only: a `redis-server` per test on a
//! free port, one shared 3-primary Redis Cluster, a fault-injecting TCP proxy,
//! and real `fairtreat serve` replicas pointed at them.
//!
//! Nothing here mocks Redis. Every process is stopped when its handle drops;
//! as a second line of defence each one has a watchdog shell that kills it
//! when the test binary exits (the shared cluster lives in a static, which is
//! never dropped). Missing `redis-server` is a test failure with a clear
//! message, never a silent skip: `scripts/test.sh` installs it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fairtreat::store::redis::{RedisConfig, RedisStore, RedisUrl};
use serde_json::Value;

/// Panics with an actionable message when a Redis binary is missing.
pub fn require(bin: &str) {
    let ok = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{bin}` is not installed: the Redis tests need a real Redis. \
         Run scripts/test.sh (it installs redis-server), or `apt-get install -y redis-server`."
    );
}

/// A port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn port_free(p: u16) -> bool {
    TcpListener::bind(("127.0.0.1", p)).is_ok()
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A unique name within this test run (key prefixes, temp dirs).
pub fn unique(tag: &str) -> String {
    format!(
        "{tag}{}x{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Data directories live on tmpfs when there is one: an AOF there survives
/// SIGKILL (what the crash tests need) without fsync competing for a disk
/// shared with builds, which would make Redis itself the slow part.
fn temp_dir(tag: &str) -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let d = base.join(format!("fairtreat-{}", unique(tag)));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Kills `pid` when this test process exits, however it exits.
fn watchdog(pid: u32) -> Child {
    let me = std::process::id();
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -9 {pid} 2>/dev/null"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh runs")
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Sends one inline command over a raw socket (after `AUTH` with
/// `password`): its reply's first line, and the reader for the rest.
fn ask(
    port: u16,
    password: Option<&str>,
    cmd: &str,
) -> std::io::Result<(String, BufReader<TcpStream>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    if let Some(p) = password {
        s.write_all(format!("AUTH {p}\r\n").as_bytes())?;
        r.read_line(&mut line)?;
        line.clear();
    }
    s.write_all(format!("{cmd}\r\n").as_bytes())?;
    r.read_line(&mut line)?;
    Ok((line, r))
}

/// Sends one inline command over a raw socket and reads one reply line.
fn raw(port: u16, password: Option<&str>, cmd: &str) -> std::io::Result<String> {
    ask(port, password, cmd).map(|(line, _)| line)
}

/// Starts `cmd` (a `redis-server`) with its output discarded, and the
/// watchdog that kills it when the test binary exits.
fn spawn_watched(cmd: &mut Command) -> (Child, Child) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs");
    let dog = watchdog(child.id());
    (child, dog)
}

/// Whether the `redis-server` answering on `port` is process `pid`: a port
/// checked free can be taken by another test's server before ours binds it
/// (ours then exits), and that one answers `PING` just as well.
fn serves(port: u16, password: Option<&str>, pid: u32) -> bool {
    let info = || -> std::io::Result<String> {
        let (line, mut r) = ask(port, password, "INFO server")?;
        let len: usize = line
            .trim()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not a bulk reply: {line:?}")))?;
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    info().is_ok_and(|i| i.contains(&format!("process_id:{pid}\r\n")))
}

/// How to start a `redis-server`.
#[derive(Clone, Default)]
pub struct RedisOptions {
    /// `requirepass` (the default user's password).
    pub password: Option<String>,
    /// AOF with `appendfsync always`, so a SIGKILL loses nothing.
    pub persistent: bool,
    /// Extra `--name value` arguments.
    pub extra: Vec<String>,
}

/// One `redis-server` on 127.0.0.1.
pub struct RedisServer {
    child: Child,
    dog: Child,
    pub port: u16,
    dir: PathBuf,
    opts: RedisOptions,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(RedisOptions::default())
    }

    pub fn start_with(opts: RedisOptions) -> Self {
        require("redis-server");
        let dir = temp_dir("redis");
        for _ in 0..5 {
            let port = free_port();
            let (child, dog) = Self::spawn(port, &dir, &opts, &[]);
            let mut s = Self {
                child,
                dog,
                port,
                dir: dir.clone(),
                opts: opts.clone(),
            };
            if s.wait_ready(Duration::from_secs(5)) {
                return s;
            }
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        panic!("redis-server did not start on a free port (5 attempts)");
    }

    fn spawn(port: u16, dir: &PathBuf, opts: &RedisOptions, more: &[String]) -> (Child, Child) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(dir)
            .args(["--appendonly", if opts.persistent { "yes" } else { "no" }])
            .args(["--appendfsync", "always", "--daemonize", "no"]);
        if let Some(p) = &opts.password {
            cmd.args(["--requirepass", p]);
        }
        cmd.args(&opts.extra).args(more);
        spawn_watched(&mut cmd)
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if serves(self.port, self.opts.password.as_deref(), self.child.id()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub fn url(&self) -> String {
        match &self.opts.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// SIGKILL, and wait until the port is closed.
    pub fn kill(&mut self) {
        signal(self.pid(), "KILL");
        let _ = self.child.wait();
    }

    /// Starts it again on the same port (and data directory).
    pub fn restart(&mut self) {
        let _ = self.dog.kill();
        let _ = self.dog.wait();
        let start = Instant::now();
        loop {
            let (child, dog) = Self::spawn(self.port, &self.dir, &self.opts, &[]);
            self.child = child;
            self.dog = dog;
            if self.wait_ready(Duration::from_secs(5)) {
                return;
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `redis-cli` against this server (as the default user).
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, self.opts.password.as_deref(), args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.dog.kill();
        let _ = self.dog.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn cli(port: u16, password: Option<&str>, args: &[&str]) -> String {
    require("redis-cli");
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(p) = password {
        cmd.env("REDISCLI_AUTH", p);
    }
    let out = cmd.args(args).output().expect("redis-cli runs");
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 3-primary Redis Cluster on loopback ports (each node also uses port +
/// 10000), optionally with replicas that take over a failed primary.
pub struct RedisCluster {
    nodes: Vec<(Child, Child)>,
    pub ports: Vec<u16>,
    dir: PathBuf,
}

impl RedisCluster {
    pub fn start() -> Self {
        Self::start_with_replicas(0)
    }

    /// Three primaries, each with `replicas` replicas (node timeout 2 s, so
    /// a replica takes over a dead primary within a few seconds).
    pub fn start_with_replicas(replicas: u16) -> Self {
        require("redis-server");
        require("redis-cli");
        let dir = temp_dir("cluster");
        let count = 3 * (1 + replicas);
        // Candidate bases whose ports (and bus ports, +10000) are free now;
        // another test may still take one before a node binds it, so a base
        // whose nodes do not all come up as ours is dropped for the next.
        let mut bases = (0..200)
            .map(|i| 20_000 + ((std::process::id() as u16 % 500) * 40 + i * 7) % 25_000)
            .filter(|p| (0..count).all(|i| port_free(p + i) && port_free(p + i + 10_000)));
        let start = Instant::now();
        let (ports, nodes) = (0..5)
            .find_map(|_| {
                let base = bases.next().expect("free port pairs below 55535");
                let ports: Vec<u16> = (0..count).map(|i| base + i).collect();
                let mut nodes: Vec<(Child, Child)> = ports
                    .iter()
                    .map(|p| Self::spawn_node(*p, &dir.join(p.to_string())))
                    .collect();
                if ports.iter().zip(&mut nodes).all(|(p, (c, _))| {
                    let up = Instant::now();
                    while up.elapsed() < Duration::from_secs(10) {
                        if matches!(c.try_wait(), Ok(Some(_))) {
                            return false;
                        }
                        if serves(*p, None, c.id()) {
                            return true;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    false
                }) {
                    return Some((ports, nodes));
                }
                for (mut c, mut d) in nodes {
                    let _ = c.kill();
                    let _ = c.wait();
                    let _ = d.kill();
                    let _ = d.wait();
                }
                None
            })
            .expect("a cluster's nodes on free ports (5 attempts)");
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
        args.extend(["--cluster-replicas".to_string(), replicas.to_string()]);
        args.push("--cluster-yes".into());
        let out = Command::new("redis-cli")
            .args(&args)
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for p in &ports {
            loop {
                let info = cli(*p, None, &["cluster", "info"]);
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "cluster not ok on {p}: {info}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Replicas in sync with their primaries (else a failover would
        // lose everything written so far).
        for p in &ports {
            loop {
                let info = cli(*p, None, &["info", "replication"]);
                if info.contains("role:master") || info.contains("master_link_status:up") {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "replica {p} not in sync: {info}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes, ports, dir }
    }

    /// One cluster node on `port`, its files in `dir`.
    fn spawn_node(port: u16, dir: &PathBuf) -> (Child, Child) {
        std::fs::create_dir_all(dir).unwrap();
        spawn_watched(
            Command::new("redis-server")
                .arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .arg("--cluster-config-file")
                .arg(dir.join("nodes.conf"))
                .arg("--dir")
                .arg(dir),
        )
    }

    /// The ports of the nodes that are primaries now, as `node` sees it.
    pub fn primaries(&self, node: u16) -> Vec<u16> {
        self.topology(node)
            .into_iter()
            .filter(|(_, _, slots)| !slots.is_empty())
            .map(|(port, _, _)| port)
            .collect()
    }

    /// The port of the primary serving `key`'s slot, as `node` sees it.
    pub fn owner_of(&self, node: u16, key: &str) -> u16 {
        let slot: u16 = cli(node, None, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .expect("a slot number");
        self.topology(node)
            .into_iter()
            .find(|(_, _, slots)| slots.iter().any(|r| r.contains(&slot)))
            .map(|(port, _, _)| port)
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    /// (port, flags, slot ranges) of every node `CLUSTER NODES` on `node`
    /// lists, failed ones included.
    fn topology(&self, node: u16) -> Vec<(u16, String, Vec<std::ops::RangeInclusive<u16>>)> {
        cli(node, None, &["cluster", "nodes"])
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let port = f.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                let slots = f
                    .iter()
                    .skip(8)
                    .filter_map(|r| {
                        let (a, b) = r.split_once('-').unwrap_or((r, r));
                        Some(a.parse().ok()?..=b.parse().ok()?)
                    })
                    .collect();
                Some((port, f.get(2)?.to_string(), slots))
            })
            .collect()
    }

    /// SIGKILLs the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).expect("a node");
        let _ = self.nodes[i].0.kill();
        let _ = self.nodes[i].0.wait();
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Every key of every node matching `pattern`, with its node port.
    pub fn keys(&self, pattern: &str) -> Vec<(u16, String)> {
        let mut all = Vec::new();
        for p in &self.ports {
            for k in cli(*p, None, &["--scan", "--pattern", pattern]).lines() {
                all.push((*p, k.to_string()));
            }
        }
        all
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (c, d) in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cluster shared by every test of this run (started on first use;
/// tests isolate themselves with their own key prefix).
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

/// A store for tests: exact window reads, generous timeouts (debug builds).
pub fn test_store(url: &str, prefix: &str) -> RedisStore {
    let mut cfg = RedisConfig::new(RedisUrl::new(url));
    cfg.prefix = prefix.to_string();
    cfg.window_snapshot_ttl = Duration::ZERO;
    cfg.dry_pool_memory = Duration::ZERO;
    cfg.response_timeout = Duration::from_secs(2);
    cfg.op_timeout = Duration::from_secs(5);
    cfg.call_budget = Duration::from_secs(5);
    RedisStore::connect(cfg).expect("store config")
}

// ---------------------------------------------------------------------------
// Fault proxy

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward as is.
    Ok,
    /// Hold every chunk this long before forwarding (each chunk on its own
    /// clock, so a multiplexed connection is not serialised).
    Delay(u64),
    /// Close every connection and every new one.
    Cut,
    /// Accept and read, forward nothing; leaving this mode closes the
    /// connections (a partition that heals with resets, not a flood of
    /// stale bytes).
    Blackhole,
}

struct ProxyShared {
    mode: Mutex<Mode>,
    epoch: tokio::sync::watch::Sender<u64>,
}

/// A loopback TCP proxy in front of a Redis port, on its own thread and runtime.
pub struct FaultProxy {
    pub port: u16,
    shared: Arc<ProxyShared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(upstream: u16) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (epoch, _) = tokio::sync::watch::channel(0u64);
        let shared = Arc::new(ProxyShared {
            mode: Mutex::new(Mode::Ok),
            epoch,
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let sh = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        if *sh.mode.lock().unwrap() == Mode::Cut {
                            drop(client);
                            continue;
                        }
                        let sh = sh.clone();
                        tokio::spawn(async move {
                            let Ok(server) =
                                tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                            else {
                                return;
                            };
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let (cr, cw) = client.into_split();
                            let (sr, sw) = server.into_split();
                            let mut epoch = sh.epoch.subscribe();
                            epoch.borrow_and_update();
                            tokio::select! {
                                _ = pump(cr, sw, sh.clone()) => {}
                                _ = pump(sr, cw, sh.clone()) => {}
                                _ = epoch.changed() => {}
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        Self {
            port,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn set(&self, mode: Mode) {
        let mut m = self.shared.mode.lock().unwrap();
        let close = mode == Mode::Cut || (*m == Mode::Blackhole && mode != Mode::Blackhole);
        *m = mode;
        drop(m);
        if close {
            self.shared.epoch.send_modify(|e| *e += 1);
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.shared.epoch.send_modify(|e| *e += 1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    sh: Arc<ProxyShared>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mode = *sh.mode.lock().unwrap();
            let delay = match mode {
                Mode::Ok => 0,
                Mode::Delay(ms) => ms,
                Mode::Blackhole => continue,
                Mode::Cut => return,
            };
            let due = tokio::time::Instant::now() + Duration::from_millis(delay);
            if tx.send((due, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}

// ---------------------------------------------------------------------------
// Real replicas

/// One `fairtreat serve` process.
pub struct Replica {
    child: Child,
    pub addr: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    /// Starts the binary with `REDIS_URL`, without load shedding, and waits
    /// for its "listening" line.
    pub fn start(redis_url: &str, policy: Option<&std::path::Path>, envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fairtreat"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--workers", "2"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("FAIRTREAT_BIND")
            .env_remove("FAIRTREAT_POLICY")
            .env_remove("FAIRTREAT_MODELS")
            .env_remove("FAIRTREAT_ADMIN_KEY")
            .env("REDIS_URL", redis_url)
            .env("RUST_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            // No load shedding (a test may turn it on in `envs`): these
            // tests check the store's guarantees with many clients on debug
            // builds, several replicas to two cores, where a decision costs
            // ten times what it does in release and a replica would shed
            // as a production one would only far past its capacity.
            .env("FAIRTREAT_SHED_AFTER_MS", "0")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = policy {
            cmd.arg("--policy").arg(p);
        }
        let mut child = cmd.spawn().expect("the fairtreat binary runs");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let sink = logs.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if v["message"] == "fairtreat listening" {
                            let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                        }
                    }
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no listening line; logs: {:?}", logs.lock().unwrap())
            });
        Self { child, addr, logs }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a policy file (the bundled one with `edit` applied) and returns its path.
pub fn policy_file(edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/policy.toml"))
        .expect("bundled policy");
    let mut doc: toml::Table = text.parse().expect("policy is TOML");
    edit(&mut doc);
    let path = temp_dir("policy").join("policy.toml");
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

/// Serialises the timing-sensitive Redis tests (fault injection, the
/// replica races): on a 2-core machine they would otherwise measure each
/// other.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

#[test]
fn a_server_is_known_by_its_process_not_by_whoever_answers_on_its_port() {
    let a = RedisServer::start_with(RedisOptions {
        password: Some("harness-pw".into()),
        ..RedisOptions::default()
    });
    assert!(serves(a.port, Some("harness-pw"), a.pid()));
    assert!(!serves(a.port, Some("harness-pw"), a.pid() + 1));
    // A second server told to take `a`'s port cannot bind it and exits,
    // while `a` answers there: it must not be taken for the second one.
    let opts = a.opts.clone();
    let dir = temp_dir("redis");
    let (child, dog) = RedisServer::spawn(a.port, &dir, &opts, &[]);
    let mut b = RedisServer {
        child,
        dog,
        port: a.port,
        dir,
        opts,
    };
    assert!(!b.wait_ready(Duration::from_secs(5)));
    assert!(serves(a.port, Some("harness-pw"), a.pid()));
}
