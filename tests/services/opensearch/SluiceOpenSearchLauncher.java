// Minimal launcher for a real single-node OpenSearch used by Sluice's tests.
// Used only by tests/services/opensearch.sh, which fetches the OpenSearch jars
// from Maven Central and compiles this file against them with `javac`.
//
// It does what OpenSearch's own Bootstrap does minus the parts that need a
// distribution (security manager / java agent, bootstrap checks, native
// memory locking, jar-hell scan of the classpath): read the config directory,
// configure log4j2 from it, and start an org.opensearch.node.Node whose
// modules (netty4 HTTP/transport, analysis-common, painless, mapper-extras,
// reindex) are loaded as classpath plugins, the way OpenSearch's MockNode does.
//
// Works against OpenSearch 2.x (Node(Environment, Collection<Class<? extends
// Plugin>>, boolean)) and 3.x (Node(Environment, Collection<PluginInfo>,
// boolean)); the constructor is looked up reflectively.
//
// System properties:
//   sluice.opensearch.home     path.home (required)
//   sluice.opensearch.config   config directory holding opensearch.yml and
//                              log4j2.properties (required)
//   sluice.opensearch.plugins  comma-separated plugin classes (each may list
//                              alternatives separated by '|', first found
//                              wins); missing ones are skipped with a warning
//
// SIGTERM/SIGINT closes the node cleanly (shutdown hook).

import java.lang.reflect.Constructor;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.Version;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

public final class SluiceOpenSearchLauncher {

    // Each entry lists alternatives, first found wins: 3.x renamed the module
    // plugin classes (Netty4Plugin -> Netty4ModulePlugin, ...).
    private static final String DEFAULT_PLUGINS = String.join(",",
        "org.opensearch.transport.Netty4ModulePlugin|org.opensearch.transport.Netty4Plugin",
        "org.opensearch.analysis.common.CommonAnalysisModulePlugin|org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.painless.PainlessModulePlugin|org.opensearch.painless.PainlessPlugin",
        "org.opensearch.index.mapper.MapperExtrasModulePlugin|org.opensearch.index.mapper.MapperExtrasPlugin",
        "org.opensearch.index.reindex.ReindexModulePlugin|org.opensearch.index.reindex.ReindexPlugin");

    private SluiceOpenSearchLauncher() {}

    public static void main(String[] args) throws Exception {
        Path home = Paths.get(required("sluice.opensearch.home")).toAbsolutePath();
        Path config = Paths.get(required("sluice.opensearch.config")).toAbsolutePath();

        // Same order as Bootstrap: catch log4j status errors, then read settings,
        // then configure logging from <config>/log4j2.properties.
        LogConfigurator.registerErrorListener();
        Settings input = Settings.builder().put("path.home", home.toString()).build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            input, Collections.emptyMap(), config, () -> "sluice-opensearch");
        String nodeName = env.settings().get("node.name");
        if (nodeName != null) {
            LogConfigurator.setNodeName(nodeName);
        }
        LogConfigurator.configure(env);

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String entry : System.getProperty("sluice.opensearch.plugins", DEFAULT_PLUGINS).split(",")) {
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

        final Node node = newNode(env, plugins);
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
        }, "sluice-opensearch-shutdown"));

        try {
            node.start();
        } catch (Throwable t) {
            t.printStackTrace();
            System.err.println("[sluice-launcher] node failed to start");
            // Runs the shutdown hook, which closes what was opened.
            System.exit(1);
        }
        System.out.println("[sluice-launcher] node started (OpenSearch " + Version.CURRENT
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

    /** Calls Node's protected (Environment, Collection, boolean) constructor. */
    private static Node newNode(Environment env, List<Class<? extends Plugin>> plugins) throws Exception {
        for (Constructor<?> c : Node.class.getDeclaredConstructors()) {
            Class<?>[] p = c.getParameterTypes();
            if (p.length != 3 || p[0] != Environment.class || p[1] != Collection.class || p[2] != boolean.class) {
                continue;
            }
            Type elem = ((ParameterizedType) c.getGenericParameterTypes()[1]).getActualTypeArguments()[0];
            Collection<?> arg;
            if (elem.getTypeName().equals("org.opensearch.plugins.PluginInfo")) {
                arg = pluginInfos(plugins); // OpenSearch 3.x
            } else {
                arg = plugins; // OpenSearch 2.x: Collection<Class<? extends Plugin>>
            }
            c.setAccessible(true);
            return (Node) c.newInstance(env, arg, true);
        }
        throw new IllegalStateException("no Node(Environment, Collection, boolean) constructor found");
    }

    /** OpenSearch 3.x describes classpath plugins with PluginInfo, built reflectively. */
    private static List<Object> pluginInfos(List<Class<? extends Plugin>> plugins) throws Exception {
        Class<?> info = Class.forName("org.opensearch.plugins.PluginInfo");
        Constructor<?> ctor = info.getConstructor(String.class, String.class, String.class, Version.class,
            String.class, String.class, String.class, List.class, boolean.class);
        List<Object> out = new ArrayList<>();
        for (Class<? extends Plugin> p : plugins) {
            out.add(ctor.newInstance(p.getName(), "classpath plugin", "NA", Version.CURRENT,
                "1.8", p.getName(), null, Collections.emptyList(), false));
        }
        return out;
    }
}
