// Minimal launcher for a real single-node Elasticsearch 7.x used by Sluice's
// tests. Used only by tests/services/elasticsearch.sh, which fetches the
// Elasticsearch jars from Maven Central and compiles this file against them
// with `javac`.
//
// It does what Elasticsearch's own Bootstrap does minus the parts that need a
// distribution (security manager, bootstrap checks, native memory locking,
// jar-hell scan of the classpath): read the config directory, configure log4j2
// from it, and start an org.elasticsearch.node.Node whose modules (netty4
// HTTP/transport, mapper-extras, reindex) are loaded as classpath plugins, the
// way Elasticsearch's MockNode does.
//
// System properties:
//   sluice.elasticsearch.home     path.home (required)
//   sluice.elasticsearch.config   config directory holding elasticsearch.yml
//                                 and log4j2.properties (required)
//   sluice.elasticsearch.plugins  comma-separated plugin classes (each may
//                                 list alternatives separated by '|', first
//                                 found wins); missing ones are skipped with a
//                                 warning
//
// SIGTERM/SIGINT closes the node cleanly (shutdown hook).

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.Version;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.Plugin;

public final class SluiceElasticsearchLauncher {

    // The modules of a 7.x distribution that are published on Maven Central.
    // Each entry lists alternatives, first found wins: ReindexPlugin moved from
    // org.elasticsearch.index.reindex to org.elasticsearch.reindex in 7.16.
    private static final String DEFAULT_PLUGINS = String.join(",",
        "org.elasticsearch.transport.Netty4Plugin",
        "org.elasticsearch.index.mapper.MapperExtrasPlugin",
        "org.elasticsearch.reindex.ReindexPlugin|org.elasticsearch.index.reindex.ReindexPlugin");

    private SluiceElasticsearchLauncher() {}

    /** Node's (Environment, classpath plugins, forbidPrivateIndexSettings) constructor is protected. */
    private static final class ClasspathPluginsNode extends Node {
        ClasspathPluginsNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        Path home = Paths.get(required("sluice.elasticsearch.home")).toAbsolutePath();
        Path config = Paths.get(required("sluice.elasticsearch.config")).toAbsolutePath();

        // Same order as Bootstrap: catch log4j status errors, then read settings,
        // then configure logging from <config>/log4j2.properties.
        LogConfigurator.registerErrorListener();
        Settings input = Settings.builder().put("path.home", home.toString()).build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            input, Collections.emptyMap(), config, () -> "sluice-elasticsearch");
        String nodeName = env.settings().get("node.name");
        if (nodeName != null) {
            LogConfigurator.setNodeName(nodeName);
        }
        LogConfigurator.configure(env);

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String entry : System.getProperty("sluice.elasticsearch.plugins", DEFAULT_PLUGINS).split(",")) {
            entry = entry.trim();
            if (entry.isEmpty()) {
                continue;
            }
            Class<? extends Plugin> found = null;
            for (String name : entry.split("\\|")) {
                try {
                    found = Class.forName(name.trim()).asSubclass(Plugin.class);
                    break;
                } catch (ClassNotFoundException e) {
                    // try the next alternative
                }
            }
            if (found != null) {
                plugins.add(found);
            } else {
                System.err.println("[sluice-launcher] plugin class not on classpath, skipped: " + entry);
            }
        }

        final Node node = new ClasspathPluginsNode(env, plugins);
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "sluice-elasticsearch-shutdown"));

        try {
            node.start();
        } catch (Throwable t) {
            t.printStackTrace();
            System.err.println("[sluice-launcher] node failed to start");
            // Runs the shutdown hook, which closes what was opened.
            System.exit(1);
        }
        System.out.println("[sluice-launcher] node started (Elasticsearch " + Version.CURRENT
            + ", " + plugins.size() + " classpath plugins)");
        stopped.await(); // keep-alive, like Bootstrap's keepAliveThread
    }

    private static String required(String key) {
        String value = System.getProperty(key);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("missing -D" + key);
        }
        return value;
    }
}
