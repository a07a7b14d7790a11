//! A real highly available PostgreSQL for the failover drill (issue 24): etcd and two
//! PostgreSQL 15 members managed by Patroni, with synchronous replication, all on this
//! machine in a temporary directory. Patroni fails over as soon as it sees the primary's
//! postmaster gone (`primary_start_timeout: 0`) and brings the old primary back as a standby
//! with pg_rewind.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// PostgreSQL refuses to run as root; Patroni runs as the `postgres` user.
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        assert!(output.status.success(), "the postgres user exists");
        String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

fn pg_bin() -> String {
    std::env::var("STELSELNODE_TEST_PG_BIN")
        .expect("STELSELNODE_TEST_PG_BIN: scripts/test names the PostgreSQL binaries")
}

pub struct Member {
    pub name: String,
    pub pg_port: u16,
    pub rest_port: u16,
    data_dir: PathBuf,
    patroni: Child,
}

impl Member {
    /// The postmaster's process id, from its pid file.
    pub fn postmaster(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Patroni's REST API answers 200 on `/primary` for the leader, on `/sync` for the
    /// synchronous standby, on `/replica` for a running standby.
    pub fn answers(&self, check: &str) -> bool {
        let url = format!("http://127.0.0.1:{}/{check}", self.rest_port);
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "2",
                &url,
            ])
            .output()
            .is_ok_and(|o| o.stdout == b"200")
    }
}

pub struct PatroniCluster {
    dir: PathBuf,
    etcd: Child,
    pub members: Vec<Member>,
}

impl PatroniCluster {
    /// Starts etcd and two members, and waits until one leads and the other is its
    /// synchronous standby.
    pub async fn start(dir: &Path) -> Self {
        let (uid, gid) = postgres_user();
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
        let (client, peer) = (free_port(), free_port());
        let etcd = Command::new("etcd")
            .args(["--name", "drill", "--data-dir"])
            .arg(dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{client}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{client}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-cluster",
                &format!("drill=http://127.0.0.1:{peer}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("etcd.log")).unwrap())
            .spawn()
            .expect("etcd (Debian etcd-server) runs");
        let mut cluster = Self {
            dir: dir.to_owned(),
            etcd,
            members: Vec::new(),
        };
        // The first member bootstraps the cluster and leads; the second clones it and
        // becomes its synchronous standby.
        for (index, (name, role)) in [("pg1", "primary"), ("pg2", "sync")]
            .into_iter()
            .enumerate()
        {
            let member = cluster.member(name, client, uid, gid);
            cluster.members.push(member);
            cluster
                .until(&format!("{name} answers {role}"), |c| {
                    c.members[index].answers(role)
                })
                .await;
        }
        cluster
    }

    /// Starts Patroni for one member, with etcd on port `etcd`.
    fn member(&self, name: &str, etcd: u16, uid: u32, gid: u32) -> Member {
        let dir = &self.dir;
        let (pg_port, rest_port) = (free_port(), free_port());
        let data_dir = dir.join(name);
        let config = dir.join(format!("{name}.yml"));
        std::fs::write(
            &config,
            format!(
                "scope: stelselnode-drill
name: {name}
restapi:
  listen: 127.0.0.1:{rest_port}
  connect_address: 127.0.0.1:{rest_port}
etcd3:
  hosts: 127.0.0.1:{etcd}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    synchronous_mode: true
    primary_start_timeout: 0
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_log_hints: 'on'
        max_connections: 200
  initdb:
    - encoding: UTF8
  pg_hba:
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:{pg_port}
  connect_address: 127.0.0.1:{pg_port}
  data_dir: {data}
  bin_dir: {bin}
  pgpass: {dir}/{name}.pgpass
  authentication:
    replication: {{username: replicator, password: drill}}
    superuser: {{username: postgres, password: drill}}
    rewind: {{username: postgres, password: drill}}
  parameters:
    unix_socket_directories: {dir}
",
                data = data_dir.display(),
                bin = pg_bin(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let patroni = Command::new("patroni")
            .arg(&config)
            .uid(uid)
            .gid(gid)
            .env("HOME", dir)
            .current_dir(dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("patroni (Debian patroni) runs");
        Member {
            name: name.into(),
            pg_port,
            rest_port,
            data_dir,
            patroni,
        }
    }

    /// A URL naming both members, for the node: libpq's multi-host form.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}?target_session_attrs=read-write",
            self.members[0].pg_port, self.members[1].pg_port
        )
    }

    /// The member that leads now.
    pub fn primary(&self) -> Option<usize> {
        self.members.iter().position(|m| m.answers("primary"))
    }

    /// Waits (polling every 100 ms, at most two minutes) until `condition` holds.
    pub async fn until(&self, what: &str, condition: impl Fn(&Self) -> bool) -> Duration {
        let started = Instant::now();
        while !condition(self) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{what}: not within two minutes; see {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    }
}

impl Drop for PatroniCluster {
    fn drop(&mut self) {
        let postmasters: Vec<u32> = self.members.iter().filter_map(Member::postmaster).collect();
        for member in &mut self.members {
            let _ = member.patroni.kill();
            let _ = member.patroni.wait();
        }
        for pid in postmasters {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}
