package enrolmentsync.peer;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.AsyncResultSet;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.Row;
import java.lang.management.ManagementFactory;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The plain-JVM job enrolment-sync is measured against: every enrolment of one (course, batch)
 * by a token-range scan of user_enrolments (the ring split into --ranges equal ranges, --in-flight
 * of them read at a time, pages of --page-size rows), one sync event per active user (completed
 * ones included, a null `active` counts as active) to --topic, keyed by user id, with acks=all,
 * idempotence, lz4, linger 50 ms and 1 MiB batches.
 *
 * <p>Prints one JSON line on stdout: rows read, users selected, events acknowledged, wall time
 * and CPU time of the scan-and-produce (connections are opened before the clock starts), and the
 * CPU time of the whole process. Exits 1 when the acknowledged events differ from the selected
 * users, 2 on bad arguments.
 */
public final class PeerJob {
  private static final BigInteger MIN_TOKEN = BigInteger.valueOf(Long.MIN_VALUE);
  private static final BigInteger MAX_TOKEN = BigInteger.valueOf(Long.MAX_VALUE);

  private PeerJob() {}

  public static void main(String[] args) throws Exception {
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    }
    Map<String, String> opts;
    try {
      opts = parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("peer: " + e.getMessage());
      System.exit(2);
      return;
    }
    System.exit(run(opts));
  }

  private static Map<String, String> parse(String[] args) {
    Map<String, String> o = new HashMap<>();
    o.put("cassandra", "127.0.0.1:9042");
    o.put("local-dc", "datacenter1");
    o.put("bootstrap", "127.0.0.1:9092");
    o.put("ranges", "32");
    o.put("in-flight", "8");
    o.put("page-size", "5000");
    for (int i = 0; i < args.length; i += 2) {
      if (!args[i].startsWith("--") || i + 1 >= args.length) throw new IllegalArgumentException("usage: --name value …");
      o.put(args[i].substring(2), args[i + 1]);
    }
    for (String required : List.of("keyspace", "course", "batch", "trigger-id", "requested-at", "topic")) {
      if (!o.containsKey(required)) throw new IllegalArgumentException("--" + required + " is required");
    }
    return o;
  }

  private static int run(Map<String, String> o) throws Exception {
    String[] cp = o.get("cassandra").split(":");
    int ranges = Integer.parseInt(o.get("ranges"));
    int inFlight = Integer.parseInt(o.get("in-flight"));
    int pageSize = Integer.parseInt(o.get("page-size"));
    String course = o.get("course");
    String batch = o.get("batch");
    String triggerId = o.get("trigger-id");
    long requestedAt = Long.parseLong(o.get("requested-at"));
    String topic = o.get("topic");

    DriverConfigLoader config =
        DriverConfigLoader.programmaticBuilder()
            .withInt(DefaultDriverOption.REQUEST_PAGE_SIZE, pageSize)
            .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(30))
            .build();
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, o.get("bootstrap"));
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
    props.put(ProducerConfig.LINGER_MS_CONFIG, "50");
    props.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(1 << 20));
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

    ExecutorService workers = Executors.newFixedThreadPool(inFlight);
    try (CqlSession session =
            CqlSession.builder()
                .addContactPoint(new InetSocketAddress(cp[0], Integer.parseInt(cp[1])))
                .withLocalDatacenter(o.get("local-dc"))
                .withConfigLoader(config)
                .build();
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
      PreparedStatement scan =
          session.prepare(
              "SELECT userid, active, status FROM "
                  + o.get("keyspace")
                  + ".user_enrolments WHERE token(userid) > ? AND token(userid) <= ?"
                  + " AND (courseid, batchid) >= (?, ?) AND (courseid, batchid) <= (?, ?) ALLOW FILTERING");
      producer.partitionsFor(topic); // metadata now, not on the clock

      AtomicLong rows = new AtomicLong();
      AtomicLong selected = new AtomicLong();
      AtomicLong acked = new AtomicLong();
      AtomicLong failed = new AtomicLong();
      AtomicReference<Exception> firstError = new AtomicReference<>();
      long cpuStart = processCpuNanos();
      long started = System.nanoTime();

      List<Future<?>> done = new ArrayList<>();
      for (long[] range : split(ranges)) {
        done.add(
            workers.submit(
                () -> {
                  SyncEvents events = new SyncEvents(triggerId, course, batch, requestedAt);
                  long read = 0;
                  long chosen = 0;
                  AsyncResultSet page =
                      join(session.executeAsync(scan.bind(range[0], range[1], course, batch, course, batch)));
                  for (; ; ) {
                    // ask for the next page before working through this one
                    CompletableFuture<AsyncResultSet> next =
                        page.hasMorePages() ? page.fetchNextPage().toCompletableFuture() : null;
                    for (Row row : page.currentPage()) {
                      read++;
                      // columns by position: userid, active, status
                      if (!row.isNull(1) && !row.getBoolean(1)) continue;
                      chosen++;
                      String userId = row.getString(0);
                      producer.send(
                          new ProducerRecord<>(
                              topic,
                              userId.getBytes(StandardCharsets.UTF_8),
                              events.event(userId).getBytes(StandardCharsets.UTF_8)),
                          (meta, err) -> {
                            if (err == null) {
                              acked.incrementAndGet();
                            } else {
                              failed.incrementAndGet();
                              firstError.compareAndSet(null, err);
                            }
                          });
                    }
                    if (next == null) {
                      rows.addAndGet(read);
                      selected.addAndGet(chosen);
                      return null;
                    }
                    page = next.join();
                  }
                }));
      }
      for (Future<?> f : done) f.get();
      producer.flush();
      long ns = System.nanoTime() - started;
      double cpuS = (processCpuNanos() - cpuStart) / 1e9;
      long events = acked.get();
      boolean ok = events == selected.get() && failed.get() == 0;
      double seconds = ns / 1e9;
      System.out.println(
          "{\"rows\":" + rows.get()
              + ",\"selected\":" + selected.get()
              + ",\"events\":" + events
              + ",\"failed\":" + failed.get()
              + ",\"ms\":" + Math.round(ns / 1e6)
              + ",\"events_per_s\":" + Math.round(events / seconds)
              + ",\"cpu_s\":" + String.format("%.3f", cpuS)
              + ",\"cpu_s_process\":" + String.format("%.3f", processCpuNanos() / 1e9)
              + ",\"ranges\":" + ranges
              + ",\"in_flight\":" + inFlight
              + ",\"page_size\":" + pageSize
              + ",\"java\":\"" + System.getProperty("java.version") + "\""
              + ",\"ok\":" + ok
              + "}");
      if (!ok) {
        System.err.println(
            "peer: " + events + " events acknowledged for " + selected.get() + " selected users"
                + (firstError.get() != null ? ": " + firstError.get() : ""));
        return 1;
      }
      return 0;
    } finally {
      workers.shutdownNow();
    }
  }

  /** The ring (MIN, MAX] in n equal ranges (start exclusive, end inclusive), as enrolment-sync splits it. */
  static List<long[]> split(int n) {
    BigInteger width = MAX_TOKEN.subtract(MIN_TOKEN);
    List<long[]> out = new ArrayList<>(n);
    BigInteger start = MIN_TOKEN;
    for (int i = 1; i <= n; i++) {
      BigInteger end = i == n ? MAX_TOKEN : MIN_TOKEN.add(width.multiply(BigInteger.valueOf(i)).divide(BigInteger.valueOf(n)));
      out.add(new long[] {start.longValueExact(), end.longValueExact()});
      start = end;
    }
    return out;
  }

  private static <T> T join(java.util.concurrent.CompletionStage<T> stage) {
    return stage.toCompletableFuture().join();
  }

  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }
}
