// The Java client (kafka-clients) as one member of krust-bench's rebalance
// benchmark (crates/krust-bench/src/rebalance.rs), speaking the same lines
// as krust's member (krust-bench rebalance-member):
//
//   JavaRebalanceMember BOOTSTRAP GROUP TOPIC MODE DEADLINE_S
//
// MODE is eager (classic, range), cooperative (classic,
// cooperative-sticky) or consumer (KIP-848, the broker's uniform
// assignor). Classic members get session.timeout.ms 6000 and
// heartbeat.interval.ms 500 (the consumer protocol's are the broker's).
// enable.auto.commit false; every non-empty poll is committed with
// commitSync before the next poll, as krust's member does.
//
// Lines: `subscribing` just before subscribe(); `assigned P P ...` (the whole
// set held) after every change; `got P:N P:N ...` per non-empty poll (records
// per partition); `closed` after close(). `close` on stdin (or its end)
// closes; the program exits by itself after DEADLINE_S seconds.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class JavaRebalanceMember {
    private static final TreeSet<Integer> held = new TreeSet<>();

    private static synchronized void out(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static void report() {
        out("assigned" + held.stream().map(p -> " " + p).collect(Collectors.joining()));
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: JavaRebalanceMember BOOTSTRAP GROUP TOPIC eager|cooperative|consumer DEADLINE_S");
            System.exit(2);
        }
        String bootstrap = args[0], group = args[1], topic = args[2], mode = args[3];
        long deadline = System.nanoTime() + (long) (Double.parseDouble(args[4]) * 1e9);

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        switch (mode) {
            case "eager":
            case "cooperative":
                props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
                props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, mode.equals("eager")
                        ? "org.apache.kafka.clients.consumer.RangeAssignor"
                        : "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");
                props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
                props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
                break;
            case "consumer":
                props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
                props.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, "uniform");
                break;
            default:
                System.err.println("unknown mode " + mode);
                System.exit(2);
        }
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

        AtomicBoolean close = new AtomicBoolean(false);
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null && !line.trim().equals("close")) {
                    // only `close` is understood
                }
            } catch (Exception e) {
                // end of stdin either way
            }
            close.set(true);
        });
        reader.setDaemon(true);
        reader.start();

        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props);
        out("subscribing");
        c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                parts.forEach(tp -> held.add(tp.partition()));
                report();
            }

            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                parts.forEach(tp -> held.remove(tp.partition()));
                report();
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> parts) {
                parts.forEach(tp -> held.remove(tp.partition()));
                report();
            }
        });
        while (!close.get() && System.nanoTime() < deadline) {
            ConsumerRecords<byte[], byte[]> batch = c.poll(Duration.ofMillis(50));
            if (batch.isEmpty()) {
                continue;
            }
            TreeMap<Integer, Integer> per = new TreeMap<>();
            for (ConsumerRecord<byte[], byte[]> r : batch) {
                per.merge(r.partition(), 1, Integer::sum);
            }
            out("got" + per.entrySet().stream().map(e -> " " + e.getKey() + ":" + e.getValue())
                    .collect(Collectors.joining()));
            try {
                c.commitSync();
            } catch (Exception e) {
                // refused during a rebalance: the next owner re-reads them
            }
        }
        c.close();
        out("closed");
    }
}
