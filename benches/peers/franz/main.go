// franz-peer: franz-go (github.com/twmb/franz-go, package kgo) as one
// client of `krust-bench peers`, speaking the harness's child protocol:
//
//	franz-peer produce|consume KEY=VALUE...
//
// Keys: bootstrap, topic, records, size, partitions; consume also needs
// group. Unknown or missing keys are an error (exit 2).
//
// produce: `records` records with no key and a value of `size` bytes (the
// byte 'x' repeated, one shared slice: franz-go does not modify a record's
// value), ProducerLinger(5ms), ProducerBatchMaxBytes(1000000),
// RequiredAcks(AllISRAcks()), franz-go's default idempotence and its default
// partitioner for unkeyed records (UniformBytesPartitioner: sticky per 64 KiB
// per partition). Every delivery is counted by the Produce promise, then
// Flush; any failed delivery exits 1 naming the first error.
//
// consume: a fresh group `group` (ConsumerGroup: the classic protocol with
// franz-go's default cooperative-sticky balancer), ConsumeResetOffset(
// NewOffset().AtStart()) (= auto.offset.reset=earliest), DisableAutoCommit
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
//	{"client":"franz-go","op":...,"records":N,"wall_s":..,"cpu_s":..,"peak_rss_kb":..}
//
// wall_s and cpu_s cover the window from just before kgo.NewClient to the
// last delivery report (produce) or the last record seen (consume); cpu_s is
// getrusage(RUSAGE_SELF) user+sys over it; peak_rss_kb is VmHWM from
// /proc/self/status at the end (after Close). Everything else goes to stderr.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// deadline bounds a whole produce or consume: a broker that stops
// answering fails the run instead of hanging the harness.
const deadline = 300 * time.Second

type config struct {
	bootstrap  string
	topic      string
	records    int64
	size       int
	partitions int32
	group      string
}

type result struct {
	Client    string  `json:"client"`
	Op        string  `json:"op"`
	Records   int64   `json:"records"`
	WallS     float64 `json:"wall_s"`
	CPUS      float64 `json:"cpu_s"`
	PeakRSSKB int64   `json:"peak_rss_kb"`
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "produce" && os.Args[1] != "consume") {
		usage("the first argument must be produce or consume")
	}
	op := os.Args[1]
	cfg := parse(op, os.Args[2:])
	logf("franz-go %s, %s %d records of %d B, topic %s (%d partitions), bootstrap %s",
		franzVersion(), op, cfg.records, cfg.size, cfg.topic, cfg.partitions, cfg.bootstrap)

	var (
		res result
		err error
	)
	if op == "produce" {
		res, err = produce(cfg)
	} else {
		res, err = consume(cfg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "franz-peer %s: %v\n", op, err)
		os.Exit(1)
	}
	rss, err := peakRSSKB()
	if err != nil {
		fmt.Fprintf(os.Stderr, "franz-peer %s: %v\n", op, err)
		os.Exit(1)
	}
	res.PeakRSSKB = rss
	// Microseconds are plenty, and keep the line short.
	res.WallS = math.Round(res.WallS*1e6) / 1e6
	res.CPUS = math.Round(res.CPUS*1e6) / 1e6
	line, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(os.Stderr, "franz-peer %s: %v\n", op, err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}

func usage(why string) {
	fmt.Fprintf(os.Stderr, "franz-peer: %s\nusage: franz-peer produce|consume bootstrap=H:P topic=T records=N size=B partitions=P [group=G (consume)]\n", why)
	os.Exit(2)
}

func parse(op string, args []string) config {
	kv := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			usage(fmt.Sprintf("argument %q is not KEY=VALUE", a))
		}
		switch k {
		case "bootstrap", "topic", "records", "size", "partitions":
		case "group":
			if op != "consume" {
				usage("group is a consume key")
			}
		default:
			usage(fmt.Sprintf("unknown key %q", k))
		}
		if _, dup := kv[k]; dup {
			usage(fmt.Sprintf("key %q given twice", k))
		}
		kv[k] = v
	}
	need := []string{"bootstrap", "topic", "records", "size", "partitions"}
	if op == "consume" {
		need = append(need, "group")
	}
	for _, k := range need {
		if kv[k] == "" {
			usage(fmt.Sprintf("missing %s=...", k))
		}
	}
	num := func(k string, max int64) int64 {
		n, err := strconv.ParseInt(kv[k], 10, 64)
		if err != nil || n < 1 || n > max {
			usage(fmt.Sprintf("%s=%s is not a whole number from 1 to %d", k, kv[k], max))
		}
		return n
	}
	return config{
		bootstrap:  kv["bootstrap"],
		topic:      kv["topic"],
		records:    num("records", 1<<62),
		size:       int(num("size", 1<<30)),
		partitions: int32(num("partitions", 1<<31-1)),
		group:      kv["group"],
	}
}

func produce(cfg config) (result, error) {
	value := bytes.Repeat([]byte{'x'}, cfg.size)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	var (
		delivered atomic.Int64
		failed    atomic.Int64
		firstErr  error
		errOnce   sync.Once
		perPart   = make([]atomic.Int64, cfg.partitions)
		outside   atomic.Int64
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			errOnce.Do(func() { firstErr = fmt.Errorf("record to partition %d: %w", r.Partition, err) })
			failed.Add(1)
			return
		}
		delivered.Add(1)
		if r.Partition >= 0 && r.Partition < cfg.partitions {
			perPart[r.Partition].Add(1)
		} else {
			outside.Add(1)
		}
	}

	cpu0, t0 := cpuSeconds(), time.Now()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(cfg.bootstrap, ",")...),
		kgo.DefaultProduceTopic(cfg.topic),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1000000),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return result{}, fmt.Errorf("creating the client: %w", err)
	}
	defer cl.Close()
	for i := int64(0); i < cfg.records; i++ {
		// Blocks while the client holds its maximum of buffered records
		// (50,000 by default), so memory stays bounded.
		cl.Produce(ctx, &kgo.Record{Value: value}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return result{}, fmt.Errorf("flush: %w (%d of %d delivered)", err, delivered.Load(), cfg.records)
	}
	wall, cpu := time.Since(t0).Seconds(), cpuSeconds()-cpu0

	if n := failed.Load(); n > 0 {
		return result{}, fmt.Errorf("%d of %d records failed; the first: %w", n, cfg.records, firstErr)
	}
	if n := delivered.Load(); n != cfg.records {
		return result{}, fmt.Errorf("%d of %d records delivered after flush", n, cfg.records)
	}
	if n := outside.Load(); n > 0 {
		return result{}, fmt.Errorf("%d records went to a partition outside 0..%d: the topic has more partitions than partitions=%d", n, cfg.partitions-1, cfg.partitions)
	}
	var spread strings.Builder
	for p := range perPart {
		fmt.Fprintf(&spread, " %d:%d", p, perPart[p].Load())
	}
	logf("records per partition:%s", spread.String())
	return result{Client: "franz-go", Op: "produce", Records: cfg.records, WallS: wall, CPUS: cpu}, nil
}

func consume(cfg config) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	cpu0, t0 := cpuSeconds(), time.Now()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(cfg.bootstrap, ",")...),
		kgo.ConsumerGroup(cfg.group),
		kgo.ConsumeTopics(cfg.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		return result{}, fmt.Errorf("creating the client: %w", err)
	}
	defer cl.Close()

	// next[p]: the offset partition p must show next.
	next := make([]int64, cfg.partitions)
	var seen int64
	var verr error
	for seen < cfg.records && verr == nil {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return result{}, fmt.Errorf("%d of %d records seen within %s", seen, cfg.records, deadline)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			var all []string
			for _, e := range errs {
				all = append(all, fmt.Sprintf("%s[%d]: %v", e.Topic, e.Partition, e.Err))
			}
			return result{}, fmt.Errorf("fetch failed after %d records: %s", seen, strings.Join(all, "; "))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if seen >= cfg.records || verr != nil {
				return
			}
			p := r.Partition
			switch {
			case p < 0 || p >= cfg.partitions:
				verr = fmt.Errorf("a record from partition %d (offset %d), outside 0..%d", p, r.Offset, cfg.partitions-1)
			case r.Offset < next[p]:
				verr = fmt.Errorf("partition %d: offset %d seen twice (duplicate; expected %d next)", p, r.Offset, next[p])
			case r.Offset > next[p]:
				verr = fmt.Errorf("partition %d: gap, offsets %d..%d never seen (next record has offset %d)", p, next[p], r.Offset-1, r.Offset)
			default:
				if seen == 0 {
					logf("first record after %.3f s (client created, group joined, first fetch)", time.Since(t0).Seconds())
				}
				next[p]++
				seen++
			}
		})
	}
	if verr != nil {
		return result{}, verr
	}
	wall, cpu := time.Since(t0).Seconds(), cpuSeconds()-cpu0

	var spread strings.Builder
	for p, n := range next {
		fmt.Fprintf(&spread, " %d:%d", p, n)
	}
	logf("records per partition (each 0..n-1 exactly once):%s", spread.String())
	return result{Client: "franz-go", Op: "consume", Records: seen, WallS: wall, CPUS: cpu}, nil
}

// cpuSeconds: this process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintf(os.Stderr, "franz-peer: getrusage: %v\n", err)
		os.Exit(1)
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// peakRSSKB: VmHWM (the peak resident set) from /proc/self/status, in kB.
func peakRSSKB() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				return strconv.ParseInt(fields[0], 10, 64)
			}
			return 0, fmt.Errorf("unexpected VmHWM line %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

func franzVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/twmb/franz-go" {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "franz-peer: "+format+"\n", args...)
}
