// Small Kafka helper for tests/bench/connect/jdbc-sink.sh and selfcheck.sh,
// run on the Connect worker's classpath (kafka-clients). Not a test service.
//
//   ConnectProbe offsets BOOTSTRAP TOPIC          prints "PARTITION BEGIN END" per partition
//   ConnectProbe create-topic BOOTSTRAP TOPIC N   creates TOPIC with N partitions
//   ConnectProbe delete-topic BOOTSTRAP TOPIC     deletes TOPIC (missing is fine)
//   ConnectProbe delete-group BOOTSTRAP GROUP     deletes a consumer group (missing is fine)
//   ConnectProbe produce BOOTSTRAP TOPIC          produces stdin lines "KEY<TAB>VALUE"; prints the count
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringSerializer;

public final class ConnectProbe {
    private ConnectProbe() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            usage();
        }
        String cmd = args[0];
        String bootstrap = args[1];
        String name = args[2];
        try {
            switch (cmd) {
                case "offsets" -> offsets(bootstrap, name);
                case "create-topic" -> createTopic(bootstrap, name, args.length > 3 ? Integer.parseInt(args[3]) : 1);
                case "delete-topic" -> deleteTopic(bootstrap, name);
                case "delete-group" -> deleteGroup(bootstrap, name);
                case "produce" -> produce(bootstrap, name);
                default -> usage();
            }
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            System.err.println("ConnectProbe " + cmd + " " + name + ": " + cause);
            System.exit(1);
        }
    }

    private static void usage() {
        System.err.println("usage: ConnectProbe offsets|create-topic|delete-topic|delete-group|produce BOOTSTRAP NAME [PARTITIONS]");
        System.exit(2);
    }

    private static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(p);
    }

    private static void offsets(String bootstrap, String topic) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            Map<TopicPartition, OffsetSpec> earliest = new TreeMap<>((a, b) -> Integer.compare(a.partition(), b.partition()));
            Map<TopicPartition, OffsetSpec> latest = new TreeMap<>((a, b) -> Integer.compare(a.partition(), b.partition()));
            d.partitions().forEach(p -> {
                TopicPartition tp = new TopicPartition(topic, p.partition());
                earliest.put(tp, OffsetSpec.earliest());
                latest.put(tp, OffsetSpec.latest());
            });
            var begin = admin.listOffsets(earliest).all().get();
            var end = admin.listOffsets(latest).all().get();
            for (TopicPartition tp : earliest.keySet()) {
                System.out.println(tp.partition() + " " + begin.get(tp).offset() + " " + end.get(tp).offset());
            }
        }
    }

    private static void createTopic(String bootstrap, String topic, int partitions) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        }
    }

    private static void deleteTopic(String bootstrap, String topic) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            admin.deleteTopics(List.of(topic)).all().get();
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                throw e;
            }
        }
    }

    private static void deleteGroup(String bootstrap, String group) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            admin.deleteConsumerGroups(List.of(group)).all().get();
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof GroupIdNotFoundException)) {
                throw e;
            }
        }
    }

    private static void produce(String bootstrap, String topic) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(512 * 1024));
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        long n = 0;
        List<Exception> failures = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p);
             BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 16)) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isEmpty()) {
                    continue;
                }
                int tab = line.indexOf('\t');
                String key = tab < 0 ? null : line.substring(0, tab);
                String value = tab < 0 ? line : line.substring(tab + 1);
                producer.send(new ProducerRecord<>(topic, key, value), (md, ex) -> {
                    if (ex != null) {
                        synchronized (failures) {
                            failures.add(ex);
                        }
                    }
                });
                n++;
            }
            producer.flush();
        }
        if (!failures.isEmpty()) {
            System.err.println("ConnectProbe produce " + topic + ": " + failures.size() + " sends failed: " + failures.get(0));
            System.exit(1);
        }
        System.out.println(n);
    }
}
