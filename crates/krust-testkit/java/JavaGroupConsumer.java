// The Java client (kafka-clients) as a group member, driven by krust's
// interop tests over stdin / stdout with the same line protocol as
// crates/krust-consumer/tests/interop/group_consumer.py:
//
//   JavaGroupConsumer BOOTSTRAP GROUP TOPIC STRATEGY DEADLINE_S [PROTOCOL]
//
// STRATEGY is range | roundrobin | cooperative-sticky; PROTOCOL is classic
// (default) or consumer (KIP-848; STRATEGY is then the server assignor,
// uniform or range). session.timeout.ms 6000, enable.auto.commit false,
// auto.offset.reset earliest. Every record it processes is printed as one
// line `PARTITION OFFSET`, then committed synchronously (offset + 1, with
// the record's leader epoch); a commit that fails prints
// `commitfail PARTITION OFFSET ERROR`. After every change of its assignment
// it prints `assigned P P ...` (the whole set it holds); lost partitions are
// printed as `lost P ...` first. Commands on stdin:
//   pause  -> pauses every partition it holds (and any assigned later),
//             prints `paused`; records arriving afterwards are not processed.
//   close  -> consumer.close() (LeaveGroup), prints `closed` and exits.
// Exits by itself after DEADLINE_S seconds (prints `deadline`).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class JavaGroupConsumer {
    private static final TreeSet<Integer> held = new TreeSet<>();
    private static boolean paused = false;

    private static synchronized void out(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static void report() {
        out("assigned" + held.stream().map(p -> " " + p).collect(Collectors.joining()));
    }

    private static String assignor(String strategy) {
        switch (strategy) {
            case "range": return "org.apache.kafka.clients.consumer.RangeAssignor";
            case "roundrobin": return "org.apache.kafka.clients.consumer.RoundRobinAssignor";
            case "cooperative-sticky": return "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
            default: throw new IllegalArgumentException("unknown strategy " + strategy);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 5) {
            System.err.println("usage: JavaGroupConsumer BOOTSTRAP GROUP TOPIC STRATEGY DEADLINE_S [classic|consumer [KEY=VALUE...]]");
            System.exit(2);
        }
        String bootstrap = args[0], group = args[1], topic = args[2], strategy = args[3];
        long deadline = System.nanoTime() + (long) (Double.parseDouble(args[4]) * 1e9);
        String protocol = args.length > 5 ? args[5] : "classic";

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        if (protocol.equals("classic")) {
            props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor(strategy));
            props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        } else {
            props.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, strategy);
        }
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        // Client properties after the protocol (security.protocol, sasl.*, ssl.*).
        for (int i = 6; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                System.err.println("expected KEY=VALUE, got " + args[i]);
                System.exit(2);
            }
            props.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }

        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props);
        c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                if (paused && !parts.isEmpty()) {
                    c.pause(parts);
                }
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
                out("lost" + parts.stream().map(tp -> " " + tp.partition()).collect(Collectors.joining()));
                report();
            }
        });

        LinkedBlockingQueue<String> commands = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    commands.add(line.trim());
                }
            } catch (Exception e) {
                // end of stdin either way
            }
            commands.add("close");
        });
        reader.setDaemon(true);
        reader.start();

        while (System.nanoTime() < deadline) {
            for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(50))) {
                if (paused) {
                    continue;
                }
                out(r.partition() + " " + r.offset());
                TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                try {
                    c.commitSync(Map.of(tp, new OffsetAndMetadata(r.offset() + 1, r.leaderEpoch(), "")));
                } catch (Exception e) {
                    out("commitfail " + r.partition() + " " + r.offset() + " " + e);
                }
            }
            String cmd = commands.poll();
            if (cmd == null) {
                continue;
            }
            if (cmd.equals("pause")) {
                paused = true;
                c.pause(c.assignment());
                out("paused");
            } else if (cmd.equals("close")) {
                c.close();
                out("closed");
                return;
            }
        }
        out("deadline");
        c.close();
    }
}
