//! The pattern re-check under cancelled polls (issue 11 item 3, "same
//! class"): when the topics a pattern matches change, the member is
//! replaced by one subscribed to the new set. A poll dropped while the old
//! member left (its LeaveGroup awaited in `poll`) left the consumer with no
//! group at all and its partitions still live: it kept handing out the old
//! topic and never joined for the new one.

use super::*;

/// A consumer subscribed by pattern, every poll under a random 0–20 ms
/// timeout, while six matching topics are created one after another, each
/// with records: every record of every topic arrives, and the consumer
/// ends assigned every partition of all seven topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_change_survives_cancelled_polls() {
    let kafka = Kafka::shared();
    let prefix = unique("pcancel");
    let group = unique("pcancel");
    let topics: Vec<String> = (0..7).map(|i| format!("{prefix}-{i}")).collect();
    create_topic(kafka, &topics[0], 2).await;
    let mut want: BTreeSet<(String, String)> = BTreeSet::new();
    let put = async |topic: &str, want: &mut BTreeSet<(String, String)>| {
        produce(kafka, topic, 2, 20).await;
        want.extend((0..20).map(|i| (topic.to_owned(), i.to_string())));
    };
    put(&topics[0], &mut want).await;
    let cfg = config(
        &kafka.addr(),
        &group,
        // The pattern is looked up again every 300 ms.
        &[
            ("metadata.max.age.ms", "300"),
            ("enable.auto.commit", "true"),
        ],
    );
    let mut c = Consumer::new(cfg).await.expect("consumer");
    c.subscribe_pattern(&format!("{prefix}-.*"))
        .await
        .expect("subscribe");
    let seed = seed();
    eprintln!("seed {seed}");
    let mut rng = Rng(seed | 1);
    let mut got: BTreeSet<(String, String)> = BTreeSet::new();
    let mut cancelled = 0u32;
    let mut next_topic = 1;
    let mut created_at = Instant::now();
    let until = Instant::now() + Duration::from_secs(90);
    let all: BTreeSet<TopicPartition> = topics
        .iter()
        .flat_map(|t| [TopicPartition::new(t, 0), TopicPartition::new(t, 1)])
        .collect();
    loop {
        if next_topic < topics.len() && created_at.elapsed() > Duration::from_millis(1500) {
            create_topic(kafka, &topics[next_topic], 2).await;
            put(&topics[next_topic], &mut want).await;
            next_topic += 1;
            created_at = Instant::now();
        }
        let ms = rng.below(21);
        match tokio::time::timeout(
            Duration::from_millis(ms),
            c.poll(Duration::from_millis(200)),
        )
        .await
        {
            Ok(records) => {
                for r in records.expect("poll") {
                    let v = String::from_utf8(r.value().expect("value").to_vec()).expect("utf8");
                    got.insert((r.topic.to_string(), v));
                }
            }
            Err(_) => cancelled += 1,
        }
        if next_topic == topics.len() && want.is_subset(&got) && c.assignment() == all {
            break;
        }
        assert!(
            Instant::now() < until,
            "after {cancelled} cancelled polls: {} of {} records, assignment {:?}",
            want.intersection(&got).count(),
            want.len(),
            c.assignment()
        );
    }
    eprintln!(
        "pattern over {} topics: {} records, {cancelled} polls cancelled",
        topics.len(),
        got.len()
    );
    c.close().await.expect("close");
}
