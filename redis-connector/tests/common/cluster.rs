//! Test (and bench) helper: a private Redis Cluster of 3 masters and 3
//! replicas, six `redis-server`s (see [`RedisServer`]) on free loopback
//! ports, each in its own temporary directory, joined with
//! `redis-cli --cluster create ... --cluster-replicas 1`. Every server is
//! killed and every directory removed when the [`RedisCluster`] is dropped
//! (also when a test panics: the servers are owned before the cluster is
//! created); each server's watchdog kills it if this process dies first.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use redis_connector::{ClusterConnectorBuilder, RedisClusterConnector};

use super::RedisServer;

/// Node timeout of the test cluster: a master unreachable this long is
/// failed over to its replica.
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// A port `p` such that `p` and its cluster bus port `p + 10000` are free
/// (ephemeral ports can be too high for a bus port).
fn free_cluster_port() -> u16 {
    loop {
        let p: u16 = 20000 + (uuid::Uuid::new_v4().as_u128() % 20000) as u16;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(p) && free(p + 10000) {
            return p;
        }
    }
}

/// A running 6-node cluster owned by the test.
#[derive(Debug)]
pub struct RedisCluster {
    /// The servers, masters first as created (roles change on failover).
    pub servers: Vec<RedisServer>,
}

fn redis_cli() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into())
}

impl RedisCluster {
    /// Start six servers and create the cluster; waits until every node
    /// reports `cluster_state:ok` and agrees on the slots.
    pub fn start() -> RedisCluster {
        let timeout = NODE_TIMEOUT_MS.to_string();
        let servers: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_on(
                    free_cluster_port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        &timeout,
                        // Reads of other slots go on while one fails over.
                        "--cluster-require-full-coverage",
                        "no",
                        // Replicas sync at once (the default waits 5 s for
                        // more replicas), so a fresh cluster can fail over.
                        "--repl-diskless-sync-delay",
                        "0",
                        // DEBUG SEGFAULT from the test (loopback only).
                        "--enable-debug-command",
                        "local",
                    ],
                )
            })
            .collect();
        let cluster = RedisCluster { servers };
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(
            cluster
                .servers
                .iter()
                .map(|s| format!("127.0.0.1:{}", s.port)),
        );
        args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        let out = cluster.cli_out(&args);
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_ok(Duration::from_secs(30));
        let deadline = Instant::now() + Duration::from_secs(30);
        while cluster.replicas_up() < 3 {
            assert!(
                Instant::now() < deadline,
                "the replicas did not synchronize in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// `INFO replication` of the server on `port`.
    fn replication(&self, port: u16) -> String {
        let a = ["-p", &port.to_string(), "info", "replication"].map(String::from);
        String::from_utf8_lossy(&self.cli_out(&a).stdout).into_owned()
    }

    /// How many live servers are replicas synchronized with their master.
    pub fn replicas_up(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| s.pid().is_some())
            .filter(|s| self.replication(s.port).contains("master_link_status:up"))
            .count()
    }

    /// Wait until every replica has received everything its master wrote
    /// (replication is asynchronous: a write not yet sent is lost with its
    /// master).
    pub fn wait_replicated(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for (_, port) in self.masters() {
            loop {
                let info = self.replication(port);
                let field = |name: &str| {
                    info.lines()
                        .find_map(|l| l.trim().strip_prefix(name))
                        .map(str::to_string)
                };
                let master: Option<u64> = field("master_repl_offset:").and_then(|v| v.parse().ok());
                let replicas: Vec<u64> = info
                    .lines()
                    .filter(|l| l.starts_with("slave") && l.contains("offset="))
                    .filter_map(|l| l.split("offset=").nth(1)?.split(',').next()?.parse().ok())
                    .collect();
                if !replicas.is_empty() && replicas.iter().all(|&o| Some(o) == master) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "replicas of {port} did not catch up: {info}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Run `redis-cli` with these arguments (its output returned).
    pub fn cli_out(&self, args: &[String]) -> Output {
        Command::new(redis_cli())
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-cli ({e}): apt-get install -y redis-tools, or set REDIS_CLI"
                )
            })
    }

    /// `redis-cli -p PORT args...`, its standard output (panics on failure).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let mut all = vec!["-p".to_string(), port.to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let out = self.cli_out(&all);
        assert!(out.status.success(), "redis-cli {all:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until `redis-cli --cluster check` passes on a live node, every
    /// live node reports `cluster_state:ok` and every live replica has
    /// synchronized with its master (a replica that never did cannot be
    /// promoted).
    pub fn wait_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let live: Vec<u16> = self
                .servers
                .iter()
                .filter(|s| s.pid().is_some())
                .map(|s| s.port)
                .collect();
            let ok = live.iter().all(|p| {
                let mut a = vec!["-p".to_string(), p.to_string()];
                a.extend(["cluster", "info"].map(String::from));
                String::from_utf8_lossy(&self.cli_out(&a).stdout).contains("cluster_state:ok")
            }) && live.iter().all(|&p| {
                let info = self.replication(p);
                info.contains("role:master") || info.contains("master_link_status:up")
            }) && {
                let a = ["--cluster", "check", &format!("127.0.0.1:{}", live[0])].map(String::from);
                let out = self.cli_out(&a);
                out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("[ERR]")
            };
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not become ready in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The seed nodes (`127.0.0.1:port` of every server).
    pub fn seeds(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// A connector builder for this cluster (every server a seed).
    pub fn builder(&self) -> ClusterConnectorBuilder {
        RedisClusterConnector::builder(self.seeds())
    }

    /// `(node id, port)` of every master that serves slots, from
    /// `CLUSTER NODES` of a live node.
    pub fn masters(&self) -> Vec<(String, u16)> {
        let live = self
            .servers
            .iter()
            .find(|s| s.pid().is_some())
            .expect("a live node");
        self.cli(live.port, &["cluster", "nodes"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // id addr flags master ping pong epoch link slots...
                if !f.get(2)?.contains("master") || f[2].contains("fail") || f.len() < 9 {
                    return None;
                }
                let port = f.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                Some((f[0].to_string(), port))
            })
            .collect()
    }

    /// The server listening on `port`.
    pub fn server_mut(&mut self, port: u16) -> &mut RedisServer {
        self.servers
            .iter_mut()
            .find(|s| s.port == port)
            .expect("a server of this cluster")
    }

    /// Keys matching `pattern` on every master.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        self.masters()
            .iter()
            .flat_map(|(_, port)| {
                self.cli(*port, &["--raw", "keys", pattern])
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
