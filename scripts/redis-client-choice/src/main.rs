//! Measures redis-rs against fred on the operations of event-core's Redis Streams transport.
//!
//! Starts a private `redis-server` on a free loopback port in a temporary directory (no
//! persistence), connects one multiplexed client of each crate with the transport's timeouts
//! (redis-rs through its `ConnectionManager`, as the transport does; fred through one `Client`),
//! and times four rows, each for both clients, interleaved A/B over three rounds on a fresh
//! stream key, reporting the median throughput and the ratio fred / redis-rs:
//!
//! 1. `XADD`, one awaited at a time;
//! 2. `XADD` from 16 tasks sharing the one client;
//! 3. `EVALSHA` of the transport's fenced-ack script (`GET` of the lease, compare, `XACK`);
//! 4. a consume loop over a pre-filled stream: `XREADGROUP COUNT 100`, then one `XACK` of the
//!    ids read, until drained (entries per second).
//!
//! Every entry has the same two fields for both clients: `k` (partition key) and `e` (an event
//! envelope's JSON, about 300 bytes). The server is killed when the program ends, also on error.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fred::prelude::{Builder, ClientLike, Config, LuaInterface, StreamsInterface};
use fred::types::Value as FredValue;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script, Value as RedisValue};
use tokio::task::JoinSet;

/// A canonical envelope as the transport stores it.
const ENVELOPE: &str = r#"{"id":"0193a1b2-7c4e-7000-8000-00000000a1f3","type":"order.created","version":1,"occurred_at":"2026-11-23T10:00:00.123Z","source":"orders-service","correlation_id":"c-5f2e9a","causation_id":null,"trace_id":null,"payload":{"order_id":"o-7731","customer":"cus-0042","total_cents":12990},"meta":{"partition_key":"o-7731"}}"#;
const PARTITION_KEY: &str = "o-7731";
const GROUP: &str = "bench";
const CONSUMER: &str = "bench-1";
const TOKEN: &str = "bench-1|7";
/// The transport's `ACK` script: acknowledges only under a lease still ours.
const ACK_LUA: &str = "
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
return redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
";
static ACK: LazyLock<Script> = LazyLock::new(|| Script::new(ACK_LUA));

const ROUNDS: usize = 3;
const SEQUENTIAL_OPS: usize = 5_000;
const CONCURRENT_OPS: usize = 20_000;
const TASKS: usize = 16;
const PREFILL: usize = 20_000;
const READ_COUNT: usize = 100;

#[derive(Clone, Copy)]
enum Row {
    XaddSequential,
    XaddConcurrent,
    EvalshaAck,
    ConsumeLoop,
}

impl Row {
    const ALL: [Row; 4] = [
        Row::XaddSequential,
        Row::XaddConcurrent,
        Row::EvalshaAck,
        Row::ConsumeLoop,
    ];

    fn label(self) -> &'static str {
        match self {
            Row::XaddSequential => "XADD sequential (5,000 ops)",
            Row::XaddConcurrent => "XADD, 16 tasks on one client (20,000 ops)",
            Row::EvalshaAck => "EVALSHA fenced XACK, sequential (5,000 ops)",
            Row::ConsumeLoop => "XREADGROUP COUNT 100 + XACK, 20,000 entries",
        }
    }
}

/// A `redis-server` of our own, killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::tempdir()?;
        let child = Command::new("/usr/bin/redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .context("starting /usr/bin/redis-server")?;
        let server = Server {
            child,
            port,
            _dir: dir,
        };
        server.wait_for_ping()?;
        Ok(server)
    }

    fn wait_for_ping(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut reply = [0; 7];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("redis-server on port {} did not answer PING", self.port)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
struct Clients {
    redis: ConnectionManager,
    fred: fred::clients::Client,
}

#[tokio::main]
async fn main() -> Result<()> {
    let server = Server::start()?;
    // Both clients with the transport's timeouts (connect 2 s, response 5 s).
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    let redis = redis::Client::open(server.url())?
        .get_connection_manager_with_config(config)
        .await?;
    let fred = Builder::from_config(Config::from_url(&server.url())?)
        .with_connection_config(|config| config.connection_timeout = Duration::from_secs(2))
        .with_performance_config(|config| config.default_command_timeout = Duration::from_secs(5))
        .build()?;
    fred.init().await?;
    let clients = Clients { redis, fred };
    let version: String = redis::cmd("INFO")
        .arg("server")
        .query_async::<String>(&mut clients.redis.clone())
        .await?
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:").map(str::to_owned))
        .unwrap_or_default();
    println!(
        "redis-server {version}, envelope {} bytes, {ROUNDS} rounds, median ops/s",
        ENVELOPE.len()
    );

    // Warm up both connections (and the server's allocator) before measuring.
    for client in [Client::RedisRs, Client::Fred] {
        xadd_sequential(&clients, client, "bench:warmup", 1_000).await?;
    }

    println!(
        "| {:<44} | {:>10} | {:>10} | {:>11} |",
        "row", "redis-rs", "fred", "fred/redis"
    );
    println!("|{:-<46}|{:->12}|{:->12}|{:->13}|", "", "", "", "");
    for row in Row::ALL {
        let mut samples = [[0.0; ROUNDS]; 2];
        for round in 0..ROUNDS {
            for (index, client) in [Client::RedisRs, Client::Fred].into_iter().enumerate() {
                let key = format!("bench:{}:{}:{round}", row as u8, client.name());
                samples[index][round] = measure(&clients, client, row, &key).await?;
            }
        }
        let [redis_rs, fred] = samples.map(median);
        println!(
            "| {:<44} | {redis_rs:>10.0} | {fred:>10.0} | {:>11.2} |",
            row.label(),
            fred / redis_rs
        );
    }
    clients.fred.quit().await?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Client {
    RedisRs,
    Fred,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::RedisRs => "redis-rs",
            Client::Fred => "fred",
        }
    }
}

/// One sample of a row: prepares the key, then times the operations (ops or entries per second).
async fn measure(clients: &Clients, client: Client, row: Row, key: &str) -> Result<f64> {
    let mut setup = clients.redis.clone();
    let lease = format!("{key}:lease");
    match row {
        Row::XaddSequential | Row::XaddConcurrent => {}
        Row::EvalshaAck => {
            let () = setup.xgroup_create_mkstream(key, GROUP, "$").await?;
            let () = setup.set(&lease, TOKEN).await?;
        }
        Row::ConsumeLoop => {
            let () = setup.xgroup_create_mkstream(key, GROUP, "$").await?;
            for _ in 0..PREFILL / 1_000 {
                let mut pipe = redis::pipe();
                for _ in 0..1_000 {
                    pipe.xadd(key, "*", &[("k", PARTITION_KEY), ("e", ENVELOPE)])
                        .ignore();
                }
                let () = pipe.query_async(&mut setup).await?;
            }
        }
    }
    let sha: String = match (row, client) {
        (Row::EvalshaAck, Client::Fred) => clients.fred.script_load(ACK_LUA).await?,
        _ => String::new(),
    };

    let start = Instant::now();
    let ops = match row {
        Row::XaddSequential => xadd_sequential(clients, client, key, SEQUENTIAL_OPS).await?,
        Row::XaddConcurrent => xadd_concurrent(clients, client, key).await?,
        Row::EvalshaAck => evalsha_ack(clients, client, key, &lease, &sha).await?,
        Row::ConsumeLoop => consume(clients, client, key).await?,
    };
    let rate = ops as f64 / start.elapsed().as_secs_f64();
    let () = setup.del(&[key, lease.as_str()]).await?;
    Ok(rate)
}

async fn xadd(clients: &Clients, client: Client, key: &str) -> Result<()> {
    match client {
        Client::RedisRs => {
            let _: String = clients
                .redis
                .clone()
                .xadd(key, "*", &[("k", PARTITION_KEY), ("e", ENVELOPE)])
                .await?;
        }
        Client::Fred => {
            let _: String = clients
                .fred
                .xadd(
                    key,
                    false,
                    None,
                    "*",
                    vec![("k", PARTITION_KEY), ("e", ENVELOPE)],
                )
                .await?;
        }
    }
    Ok(())
}

async fn xadd_sequential(
    clients: &Clients,
    client: Client,
    key: &str,
    ops: usize,
) -> Result<usize> {
    for _ in 0..ops {
        xadd(clients, client, key).await?;
    }
    Ok(ops)
}

async fn xadd_concurrent(clients: &Clients, client: Client, key: &str) -> Result<usize> {
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let (clients, key) = (clients.clone(), key.to_owned());
        tasks.spawn(async move {
            xadd_sequential(&clients, client, &key, CONCURRENT_OPS / TASKS).await
        });
    }
    let mut ops = 0;
    while let Some(done) = tasks.join_next().await {
        ops += done??;
    }
    Ok(ops)
}

async fn evalsha_ack(
    clients: &Clients,
    client: Client,
    key: &str,
    lease: &str,
    sha: &str,
) -> Result<usize> {
    let mut redis = clients.redis.clone();
    for _ in 0..SEQUENTIAL_OPS {
        // 0: the id is not pending, but the lease held and XACK ran (-1 would be fenced).
        let acked: i64 = match client {
            Client::RedisRs => {
                ACK.key(lease)
                    .key(key)
                    .arg(TOKEN)
                    .arg(GROUP)
                    .arg("0-1")
                    .invoke_async(&mut redis)
                    .await?
            }
            Client::Fred => {
                clients
                    .fred
                    .evalsha(sha, vec![lease, key], vec![TOKEN, GROUP, "0-1"])
                    .await?
            }
        };
        ensure!(acked == 0, "the ack script answered {acked}");
    }
    Ok(SEQUENTIAL_OPS)
}

async fn consume(clients: &Clients, client: Client, key: &str) -> Result<usize> {
    let mut redis = clients.redis.clone();
    let mut consumed = 0;
    loop {
        let ids = match client {
            Client::RedisRs => {
                let reply: RedisValue = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(CONSUMER)
                    .arg("COUNT")
                    .arg(READ_COUNT)
                    .arg("STREAMS")
                    .arg(key)
                    .arg(">")
                    .query_async(&mut redis)
                    .await?;
                redis_ids(reply)?
            }
            Client::Fred => {
                let reply: FredValue = clients
                    .fred
                    .xreadgroup(
                        GROUP,
                        CONSUMER,
                        Some(READ_COUNT as u64),
                        None,
                        false,
                        key,
                        ">",
                    )
                    .await?;
                fred_ids(reply)?
            }
        };
        if ids.is_empty() {
            break;
        }
        let acked: usize = match client {
            Client::RedisRs => redis.xack(key, GROUP, &ids).await?,
            Client::Fred => clients.fred.xack(key, GROUP, ids.clone()).await?,
        };
        ensure!(acked == ids.len(), "acked {acked} of {}", ids.len());
        consumed += ids.len();
    }
    ensure!(consumed == PREFILL, "consumed {consumed} of {PREFILL}");
    Ok(consumed)
}

/// The ids of a one-stream XREADGROUP reply from redis-rs, checking each entry's envelope.
fn redis_ids(reply: RedisValue) -> Result<Vec<String>> {
    let RedisValue::Array(streams) = reply else {
        return Ok(Vec::new()); // nil: nothing new
    };
    let mut ids = Vec::new();
    for stream in streams {
        let RedisValue::Array(mut parts) = stream else {
            bail!("a stream of the reply is not an array");
        };
        let Some(RedisValue::Array(entries)) = parts.pop() else {
            bail!("a stream of the reply has no entries");
        };
        for entry in entries {
            let RedisValue::Array(parts) = entry else {
                bail!("an entry is not an array");
            };
            let [RedisValue::BulkString(id), RedisValue::Array(fields)] = &parts[..] else {
                bail!("an entry is not [id, fields]");
            };
            let envelope = fields.chunks(2).find_map(|pair| match pair {
                [RedisValue::BulkString(name), RedisValue::BulkString(value)] if name == b"e" => {
                    Some(value.len())
                }
                _ => None,
            });
            ensure!(
                envelope == Some(ENVELOPE.len()),
                "an entry lost its envelope"
            );
            ids.push(String::from_utf8(id.clone())?);
        }
    }
    Ok(ids)
}

/// The ids of a one-stream XREADGROUP reply from fred, checking each entry's envelope.
fn fred_ids(reply: FredValue) -> Result<Vec<String>> {
    if reply.is_null() {
        return Ok(Vec::new()); // nil: nothing new
    }
    let mut ids = Vec::new();
    for stream in reply.into_array() {
        let Some(entries) = stream.into_array().pop() else {
            bail!("a stream of the reply has no entries");
        };
        for entry in entries.into_array() {
            let mut parts = entry.into_array().into_iter();
            let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
                bail!("an entry is not [id, fields]");
            };
            let fields = fields.into_array();
            let envelope = fields.chunks(2).find_map(|pair| match pair {
                [name, value] if name.as_bytes() == Some(b"e") => value.as_bytes().map(<[u8]>::len),
                _ => None,
            });
            ensure!(
                envelope == Some(ENVELOPE.len()),
                "an entry lost its envelope"
            );
            ids.push(id.as_string().context("an entry id is not text")?);
        }
    }
    Ok(ids)
}

fn median(mut samples: [f64; ROUNDS]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[ROUNDS / 2]
}
