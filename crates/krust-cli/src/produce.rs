//! `krust produce`: one record per stdin line, every delivery awaited.
//!
//! A line is the bytes up to `\n` (which is dropped; a `\r` before it is
//! kept, so binary-safe input round-trips). With `-K DELIM` the line is
//! split at the first DELIM into key and value; a line without DELIM is a
//! value with a null key (as kcat). Without `-K` every record has a null
//! key. An empty line is a record with an empty value.
//!
//! Records are sent as they are read; a separate task awaits the delivery
//! futures in order, so reading, batching and acknowledgements overlap. A
//! record refused before sending (too large) is counted as failed and the
//! rest go on; any other refusal of `send` (unknown topic, partition out of
//! range, the producer failing) stops reading. SIGINT / SIGTERM stop
//! reading too; what was sent is still delivered and counted.

use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use krust::producer::{ProduceError, Producer, ProducerConfig, ProducerRecord};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::props::{self, Property};
use crate::signal::Shutdown;
use crate::{CliError, Outcome};

/// How many delivery failures are reported one by one before the summary.
const REPORTED_FAILURES: u64 = 10;

/// `krust produce`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  # one record per line, null keys
  printf 'a\\nb\\n' | krust produce -b localhost:9092 -t events

  # `key:value` lines, to partition 0, lz4-compressed
  krust produce -b localhost:9092 -t events -p 0 -K : -X compression.type=lz4 < lines.txt

  # give up after 5 s (bootstrap and metadata) instead of the default 30 s
  krust produce -b localhost:9092 -t events -X max.block.ms=5000 < lines.txt")]
pub struct ProduceArgs {
    /// Bootstrap broker(s), `host:port[,host:port...]`.
    #[arg(short = 'b', long = "brokers", value_name = "HOST:PORT")]
    pub brokers: String,
    /// The topic to produce to.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Send every record to this partition (default: the partitioner picks:
    /// murmur2 of the key, sticky for null keys).
    #[arg(short = 'p', long = "partition")]
    pub partition: Option<i32>,
    /// Split each line at the first DELIM into key and value; a line
    /// without it is a value with a null key.
    #[arg(short = 'K', long = "key-delimiter", value_name = "DELIM")]
    pub key_delimiter: Option<String>,
    /// A producer property by its Kafka name (repeatable), e.g.
    /// `-X acks=1 -X linger.ms=20`. `max.block.ms` also bounds how long
    /// bootstrapping may take (at most 30 s).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = props::parse)]
    pub props: Vec<Property>,
}

/// What the delivery task counted.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    delivered: u64,
    failed: u64,
}

impl Tally {
    fn fail(&mut self, e: &ProduceError) {
        self.failed += 1;
        if self.failed <= REPORTED_FAILURES {
            eprintln!("krust: delivery failed: {}", crate::describe(e));
        }
    }
}

/// Split a line (without its `\n`) into key and value.
pub fn split_line(line: &[u8], delimiter: Option<&[u8]>) -> (Option<Bytes>, Bytes) {
    let Some(d) = delimiter else {
        return (None, Bytes::copy_from_slice(line));
    };
    match line.windows(d.len()).position(|w| w == d) {
        Some(at) => (
            Some(Bytes::copy_from_slice(&line[..at])),
            Bytes::copy_from_slice(&line[at + d.len()..]),
        ),
        None => (None, Bytes::copy_from_slice(line)),
    }
}

/// Run `krust produce`.
pub async fn run(args: ProduceArgs, mut shutdown: Shutdown) -> Result<Outcome, CliError> {
    if args.key_delimiter.as_deref() == Some("") {
        return Err(CliError::usage("-K: the key delimiter must not be empty"));
    }
    let properties = props::merge(
        vec![("bootstrap.servers".to_owned(), args.brokers.clone())],
        &args.props,
    );
    let config = ProducerConfig::from_properties(properties).map_err(CliError::from_err)?;
    let producer = Producer::new(config).await.map_err(CliError::from_err)?;

    let (tx, mut rx) = mpsc::channel::<krust::producer::DeliveryFuture>(4096);
    let collector = tokio::spawn(async move {
        let mut tally = Tally::default();
        while let Some(delivery) = rx.recv().await {
            match delivery.await {
                Ok(_) => tally.delivered += 1,
                Err(e) => tally.fail(&e),
            }
        }
        tally
    });

    let delimiter = args.key_delimiter.as_deref().map(str::as_bytes);
    // One shared name for every record, not a copy each.
    let topic: std::sync::Arc<str> = args.topic.as_str().into();
    let mut stdin = BufReader::with_capacity(1 << 16, tokio::io::stdin());
    let mut line = Vec::with_capacity(1024);
    let mut refused = Tally::default();
    let mut stopped: Option<ProduceError> = None;
    let mut read_error = None;
    loop {
        line.clear();
        let read = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            r = stdin.read_until(b'\n', &mut line) => r,
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let (key, value) = split_line(&line, delimiter);
        let record = ProducerRecord {
            topic: topic.clone(),
            partition: args.partition,
            key,
            value: Some(value),
            ..Default::default()
        };
        match producer.send(record).await {
            Ok(delivery) => {
                if tx.send(delivery).await.is_err() {
                    break;
                }
            }
            Err(e @ ProduceError::RecordTooLarge { .. }) => refused.fail(&e),
            Err(e) => {
                refused.failed += 1;
                stopped = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let tally = collector.await.unwrap_or_default();
    let closed = producer.close(Duration::from_secs(10)).await;
    summary(&args.topic, tally, refused);
    if let Some(e) = read_error {
        return Err(CliError::runtime(format!("reading stdin: {e}")));
    }
    if let Some(e) = stopped {
        return Err(CliError::from_err(e));
    }
    if let Err(e) = closed {
        return Err(CliError::from_err(e));
    }
    if tally.failed + refused.failed > 0 {
        return Ok(Outcome::Failed);
    }
    Ok(Outcome::Done)
}

fn summary(topic: &str, delivered: Tally, refused: Tally) {
    let failed = delivered.failed + refused.failed;
    if failed > REPORTED_FAILURES {
        eprintln!(
            "krust: ({} more failures not shown)",
            failed - REPORTED_FAILURES
        );
    }
    eprintln!(
        "krust: produced {} records to {topic}, {failed} failed",
        delivered.delivered
    );
}

#[cfg(test)]
mod tests {
    use super::split_line;

    #[test]
    fn lines_split_at_the_first_delimiter() {
        let (k, v) = split_line(b"user-1:a:b", Some(b":"));
        assert_eq!(k.as_deref(), Some(&b"user-1"[..]));
        assert_eq!(&v[..], b"a:b");
        let (k, v) = split_line(b"k::v", Some(b"::"));
        assert_eq!((k.as_deref(), &v[..]), (Some(&b"k"[..]), &b"v"[..]));
        let (k, v) = split_line(b":v", Some(b":"));
        assert_eq!((k.as_deref(), &v[..]), (Some(&b""[..]), &b"v"[..]));
    }

    #[test]
    fn no_delimiter_means_a_null_key() {
        let (k, v) = split_line(b"plain", Some(b":"));
        assert_eq!((k, &v[..]), (None, &b"plain"[..]));
        let (k, v) = split_line(b"a:b", None);
        assert_eq!((k, &v[..]), (None, &b"a:b"[..]));
    }
}
