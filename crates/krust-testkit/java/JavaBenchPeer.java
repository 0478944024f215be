// The Java client (kafka-clients) as one client of `krust-bench peers`,
// speaking the harness's child protocol (franz-go's benches/peers/franz is
// the same program in Go):
//
//   JavaBenchPeer produce|consume KEY=VALUE...
//
// Keys: bootstrap, topic, records, size, partitions; consume also needs
// group. Unknown or missing keys are an error (exit 2).
//
// produce: `records` records with no key and a value of `size` bytes (the
// byte 'x' repeated, one shared array: the producer copies it into its
// batch), acks=all, linger.ms=5, batch.size=1000000, buffer.memory=256 MiB
// (only a bound: the pool hands out batch.size buffers as batches open),
// enable.idempotence left at its default (true), the default partitioner for
// unkeyed records (KIP-794's uniform sticky). Every send's callback is
// counted, then flush(); any failed delivery exits 1 naming the first error.
//
// consume: a fresh group `group`, group.protocol=classic (the client's
// default, set explicitly) with the default assignors (range, then
// cooperative-sticky), auto.offset.reset=earliest, enable.auto.commit=false
// (nothing is committed: the group only assigns). Polls until `records`
// records have been seen; each partition's offsets must be 0, 1, 2, ... in
// order, each exactly once: a duplicate, a gap or a partition outside
// 0..partitions-1 exits 1 naming partition and offset. Records in the last
// poll beyond the `records`-th are not counted.
//
// Both give up (exit 1) when the operation is not done within 300 s.
//
// stdout gets exactly one line of JSON:
//
//   {"client":"java","op":...,"records":N,"wall_s":..,"cpu_s":..,"peak_rss_kb":..}
//
// wall_s and cpu_s cover the window from just before the client is created
// to the end of flush() (produce) or the last record seen (consume); cpu_s is
// the JVM's process CPU time (all threads, GC and JIT included) over it;
// peak_rss_kb is VmHWM from /proc/self/status at the end (after close()).
// Everything else goes to stderr: System.out is pointed at stderr before any
// Kafka class loads, so a log line can never land on stdout.

import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class JavaBenchPeer {
    /** Bounds a whole produce or consume, so a silent broker fails the run. */
    private static final long DEADLINE_NS = 300_000_000_000L;

    /** The real stdout, for the one JSON line. */
    private static PrintStream stdout;

    /** A failure to report on stderr with exit status 1. */
    private static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message);
        }
    }

    private static final class Config {
        String bootstrap;
        String topic;
        long records;
        int size;
        int partitions;
        String group;
    }

    /** Wall and CPU seconds over a window, and how many records it saw. */
    private static final class Window {
        long records;
        double wall;
        double cpu;
    }

    public static void main(String[] args) {
        stdout = System.out;
        System.setOut(System.err);
        if (args.length < 1 || !(args[0].equals("produce") || args[0].equals("consume"))) {
            usage("the first argument must be produce or consume");
        }
        String op = args[0];
        Config cfg = parse(op, Arrays.copyOfRange(args, 1, args.length));
        log("kafka-clients " + clientsVersion() + ", " + op + " " + cfg.records + " records of "
                + cfg.size + " B, topic " + cfg.topic + " (" + cfg.partitions + " partitions), bootstrap "
                + cfg.bootstrap);
        Window w;
        long rss;
        try {
            w = op.equals("produce") ? produce(cfg) : consume(cfg);
            rss = peakRssKb();
        } catch (Failure e) {
            System.err.println("JavaBenchPeer " + op + ": " + e.getMessage());
            System.exit(1);
            return;
        } catch (Exception e) {
            System.err.println("JavaBenchPeer " + op + ": " + e);
            e.printStackTrace(System.err);
            System.exit(1);
            return;
        }
        stdout.println(String.format(Locale.ROOT,
                "{\"client\":\"java\",\"op\":\"%s\",\"records\":%d,\"wall_s\":%.6f,\"cpu_s\":%.6f,\"peak_rss_kb\":%d}",
                op, w.records, w.wall, w.cpu, rss));
        stdout.flush();
        System.exit(0);
    }

    private static void usage(String why) {
        System.err.println("JavaBenchPeer: " + why);
        System.err.println("usage: JavaBenchPeer produce|consume bootstrap=H:P topic=T records=N size=B partitions=P"
                + " [group=G (consume)]");
        System.exit(2);
    }

    private static Config parse(String op, String[] args) {
        Map<String, String> kv = new TreeMap<>();
        for (String a : args) {
            int eq = a.indexOf('=');
            if (eq < 0) {
                usage("argument \"" + a + "\" is not KEY=VALUE");
            }
            String k = a.substring(0, eq), v = a.substring(eq + 1);
            switch (k) {
                case "bootstrap":
                case "topic":
                case "records":
                case "size":
                case "partitions":
                    break;
                case "group":
                    if (!op.equals("consume")) {
                        usage("group is a consume key");
                    }
                    break;
                default:
                    usage("unknown key \"" + k + "\"");
            }
            if (kv.put(k, v) != null) {
                usage("key \"" + k + "\" given twice");
            }
        }
        List<String> need = op.equals("consume")
                ? List.of("bootstrap", "topic", "records", "size", "partitions", "group")
                : List.of("bootstrap", "topic", "records", "size", "partitions");
        for (String k : need) {
            if (kv.getOrDefault(k, "").isEmpty()) {
                usage("missing " + k + "=...");
            }
        }
        Config c = new Config();
        c.bootstrap = kv.get("bootstrap");
        c.topic = kv.get("topic");
        c.records = number(kv, "records", Long.MAX_VALUE / 2);
        c.size = (int) number(kv, "size", 1 << 30);
        c.partitions = (int) number(kv, "partitions", Integer.MAX_VALUE);
        c.group = kv.get("group");
        return c;
    }

    private static long number(Map<String, String> kv, String k, long max) {
        long n = -1;
        try {
            n = Long.parseLong(kv.get(k));
        } catch (NumberFormatException e) {
            // reported below
        }
        if (n < 1 || n > max) {
            usage(k + "=" + kv.get(k) + " is not a whole number from 1 to " + max);
        }
        return n;
    }

    private static Window produce(Config cfg) throws Failure, InterruptedException {
        byte[] value = new byte[cfg.size];
        Arrays.fill(value, (byte) 'x');
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        props.put(ProducerConfig.BATCH_SIZE_CONFIG, "1000000");
        props.put(ProducerConfig.BUFFER_MEMORY_CONFIG, Long.toString(256L << 20));
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

        AtomicLong delivered = new AtomicLong(), failed = new AtomicLong(), outside = new AtomicLong();
        AtomicLongArray perPartition = new AtomicLongArray(cfg.partitions);
        AtomicReference<String> firstError = new AtomicReference<>();

        long deadline = System.nanoTime() + DEADLINE_NS;
        double cpu0 = cpuSeconds();
        long t0 = System.nanoTime();
        Window w = new Window();
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(props)) {
            for (long i = 0; i < cfg.records; i++) {
                p.send(new ProducerRecord<>(cfg.topic, null, value), (md, e) -> {
                    if (e != null) {
                        firstError.compareAndSet(null, "record to partition "
                                + (md != null ? md.partition() : -1) + ": " + e);
                        failed.incrementAndGet();
                        return;
                    }
                    delivered.incrementAndGet();
                    if (md.partition() >= 0 && md.partition() < cfg.partitions) {
                        perPartition.incrementAndGet(md.partition());
                    } else {
                        outside.incrementAndGet();
                    }
                });
                if (System.nanoTime() > deadline) {
                    throw new Failure(i + " of " + cfg.records + " records sent within 300 s");
                }
            }
            // Returns once every record is delivered or failed (each fails
            // by delivery.timeout.ms, 120 s by default); callbacks included.
            p.flush();
            w.wall = (System.nanoTime() - t0) / 1e9;
            w.cpu = cpuSeconds() - cpu0;
        }
        if (failed.get() > 0) {
            throw new Failure(failed.get() + " of " + cfg.records + " records failed; the first: " + firstError.get());
        }
        if (delivered.get() != cfg.records) {
            throw new Failure(delivered.get() + " of " + cfg.records + " records delivered after flush");
        }
        if (outside.get() > 0) {
            throw new Failure(outside.get() + " records went to a partition outside 0.." + (cfg.partitions - 1)
                    + ": the topic has more partitions than partitions=" + cfg.partitions);
        }
        StringBuilder spread = new StringBuilder();
        for (int i = 0; i < cfg.partitions; i++) {
            spread.append(' ').append(i).append(':').append(perPartition.get(i));
        }
        log("records per partition:" + spread);
        w.records = delivered.get();
        return w;
    }

    private static Window consume(Config cfg) throws Failure {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, cfg.group);
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

        // next[p]: the offset partition p must show next.
        long[] next = new long[cfg.partitions];
        long seen = 0;
        long deadline = System.nanoTime() + DEADLINE_NS;
        double cpu0 = cpuSeconds();
        long t0 = System.nanoTime();
        Window w = new Window();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props)) {
            c.subscribe(List.of(cfg.topic));
            while (seen < cfg.records) {
                if (System.nanoTime() > deadline) {
                    throw new Failure(seen + " of " + cfg.records + " records seen within 300 s");
                }
                ConsumerRecords<byte[], byte[]> batch = c.poll(Duration.ofMillis(100));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (seen >= cfg.records) {
                        break;
                    }
                    int p = r.partition();
                    long o = r.offset();
                    if (p < 0 || p >= cfg.partitions) {
                        throw new Failure("a record from partition " + p + " (offset " + o + "), outside 0.."
                                + (cfg.partitions - 1));
                    }
                    if (o < next[p]) {
                        throw new Failure("partition " + p + ": offset " + o + " seen twice (duplicate; expected "
                                + next[p] + " next)");
                    }
                    if (o > next[p]) {
                        throw new Failure("partition " + p + ": gap, offsets " + next[p] + ".." + (o - 1)
                                + " never seen (next record has offset " + o + ")");
                    }
                    if (seen == 0) {
                        log(String.format(Locale.ROOT,
                                "first record after %.3f s (client created, group joined, first fetch)",
                                (System.nanoTime() - t0) / 1e9));
                    }
                    next[p]++;
                    seen++;
                }
            }
            w.wall = (System.nanoTime() - t0) / 1e9;
            w.cpu = cpuSeconds() - cpu0;
        }
        StringBuilder spread = new StringBuilder();
        for (int i = 0; i < cfg.partitions; i++) {
            spread.append(' ').append(i).append(':').append(next[i]);
        }
        log("records per partition (each 0..n-1 exactly once):" + spread);
        w.records = seen;
        return w;
    }

    /** The JVM's CPU time so far (every thread), in seconds. */
    private static double cpuSeconds() throws Failure {
        long ns = ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
        if (ns < 0) {
            throw new Failure("this JVM does not report process CPU time");
        }
        return ns / 1e9;
    }

    /** VmHWM (the peak resident set) from /proc/self/status, in kB. */
    private static long peakRssKb() throws IOException, Failure {
        for (String line : Files.readAllLines(Paths.get("/proc/self/status"), StandardCharsets.UTF_8)) {
            if (line.startsWith("VmHWM:")) {
                String[] f = line.substring(6).trim().split("\\s+");
                if (f.length == 2 && f[1].equals("kB")) {
                    return Long.parseLong(f[0]);
                }
                throw new Failure("unexpected VmHWM line \"" + line + "\"");
            }
        }
        throw new Failure("no VmHWM in /proc/self/status");
    }

    /** kafka-clients' version, from the file its own AppInfoParser reads. */
    private static String clientsVersion() {
        Properties p = new Properties();
        try (java.io.InputStream in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            // unknown then
        }
        return p.getProperty("version", "(unknown version)");
    }

    private static void log(String line) {
        System.err.println("JavaBenchPeer: " + line);
    }
}
