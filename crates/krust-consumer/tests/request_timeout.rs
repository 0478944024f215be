//! Each request carries its own timeout: a Fetch waits
//! `request.timeout.ms` plus `fetch.max.wait.ms` (the broker holds it that
//! long when it has nothing to return), every other request of the
//! consumer `request.timeout.ms` alone (docs/ARCHITECTURE.md, Connections;
//! Java's NetworkClient, franz-go's connTimeouter).
//!
//! On a private Apache Kafka 4.4.0 node hung with `SIGSTOP` (its sockets
//! stay open, nothing answers): a ListOffsets of the consumer to it times
//! out after `request.timeout.ms`, not after `request.timeout.ms +
//! fetch.max.wait.ms`. A private node: the one this binary would share must
//! not hang under other tests.

mod common;

use std::time::{Duration, Instant};

use common::{consumer_config, private_node, produce};
use krust_consumer::{Consumer, ConsumerError, TopicPartition};
use krust_producer::ProducerRecord;

const REQUEST_TIMEOUT: Duration = Duration::from_millis(2000);
const MAX_WAIT: Duration = Duration::from_millis(1500);
/// Two attempts' worth: the first one's timeout is what is checked.
const API_TIMEOUT: Duration = Duration::from_millis(6000);
const BOUND: Duration = Duration::from_secs(120);

/// The request timeouts in `e`'s chain of causes.
fn timeouts(e: &krust_net::Error) -> Vec<(krust_codec::ApiKey, Duration)> {
    match e {
        krust_net::Error::Timeout { api, elapsed, .. } => vec![(*api, *elapsed)],
        krust_net::Error::RetriesExhausted { last, .. } => timeouts(last),
        _ => Vec::new(),
    }
}

/// A consumer with `assign` that has fetched from the node and looked up
/// its end offsets (so its connections are made); the node hangs; the
/// next `seek_to_end` fails within `default.api.timeout.ms`, and the
/// ListOffsets it sent timed out after `request.timeout.ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_offsets_to_a_hung_broker_times_out_after_the_request_timeout() {
    tokio::time::timeout(BOUND, async {
        let (kafka, id, b, topic) = private_node("krust-hung-list-offsets", 1).await;
        let node = kafka.as_cluster();
        produce(&b, vec![ProducerRecord::new(&topic, "r0")]).await;
        let rt = REQUEST_TIMEOUT.as_millis().to_string();
        let mw = MAX_WAIT.as_millis().to_string();
        let api = API_TIMEOUT.as_millis().to_string();
        let mut consumer = Consumer::new(consumer_config(
            &b,
            &[
                ("request.timeout.ms", &rt),
                ("fetch.max.wait.ms", &mw),
                ("default.api.timeout.ms", &api),
                ("auto.offset.reset", "earliest"),
            ],
        ))
        .await
        .expect("consumer");
        let tp = TopicPartition::new(topic.clone(), 0);
        consumer.assign([tp.clone()]).expect("assign");
        let since = Instant::now();
        while consumer
            .poll(Duration::from_millis(500))
            .await
            .expect("poll")
            .is_empty()
        {
            assert!(since.elapsed() < Duration::from_secs(30), "the record came");
        }
        consumer
            .seek_to_end(std::slice::from_ref(&tp))
            .await
            .expect("seek_to_end while the node runs");
        let _hung = node.hang(id).expect("pause");
        let asked = Instant::now();
        let r = consumer.seek_to_end(std::slice::from_ref(&tp)).await;
        let e = r.expect_err(&format!(
            "a ListOffsets to a hung broker fails (took {:?}, position {:?})",
            asked.elapsed(),
            consumer.position(&tp)
        ));
        let took = asked.elapsed();
        let ConsumerError::Net(net) = &e else {
            panic!("a network error: {e:?}")
        };
        let seen = timeouts(net);
        eprintln!("seek_to_end failed after {took:?}: {e}");
        assert!(
            took < API_TIMEOUT + Duration::from_secs(1),
            "within default.api.timeout.ms: {took:?}"
        );
        let Some((api, elapsed)) = seen.first() else {
            panic!("the ListOffsets timed out: {e}")
        };
        assert_eq!(*api, krust_codec::ApiKey::ListOffsets, "{e}");
        assert!(
            *elapsed >= REQUEST_TIMEOUT && *elapsed < REQUEST_TIMEOUT + MAX_WAIT,
            "timed out after request.timeout.ms ({REQUEST_TIMEOUT:?}), not plus \
             fetch.max.wait.ms ({MAX_WAIT:?}): {elapsed:?}"
        );
    })
    .await
    .expect("bounded");
}
