//! Describe a cluster and its offsets: `cargo run --example admin -- BOOTSTRAP [TOPIC...]`.
//!
//! Prints the brokers and the controller, then for each topic named its
//! partitions with leaders and the earliest and latest offsets.

use krust::admin::{Admin, OffsetSpec};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().ok_or("usage: admin BOOTSTRAP [TOPIC...]")?;
    let topics: Vec<String> = args.collect();
    let admin = Admin::bootstrap(&bootstrap).await?;

    let cluster = admin.describe_cluster().await?;
    println!(
        "cluster {} controller {:?}",
        cluster.cluster_id.as_deref().unwrap_or("(no id)"),
        cluster.controller
    );
    for b in &cluster.brokers {
        println!("  broker {} at {}", b.id, b.addr());
    }

    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    if names.is_empty() {
        return Ok(());
    }
    for t in admin.describe_topics(&names).await? {
        let earliest: Vec<_> = t
            .partitions
            .iter()
            .map(|p| (t.name.as_str(), p.partition, OffsetSpec::Earliest))
            .collect();
        let latest: Vec<_> = earliest
            .iter()
            .map(|&(n, p, _)| (n, p, OffsetSpec::Latest))
            .collect();
        let earliest = admin.list_offsets(&earliest).await?;
        let latest = admin.list_offsets(&latest).await?;
        println!("topic {}", t.name);
        for ((p, e), l) in t.partitions.iter().zip(&earliest).zip(&latest) {
            println!(
                "  partition {} leader {:?} epoch {} replicas {:?} isr {:?} offsets {:?}..{:?}",
                p.partition, p.leader, p.leader_epoch, p.replicas, p.isr, e.offset, l.offset
            );
        }
    }
    Ok(())
}
