package dev.kiln.image;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Writer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * {@code --script FILE...}: a build step like a container build's {@code RUN}, without a daemon.
 * The sources before it are assembled, staged in a temporary directory next to the output, and
 * the scripts run there in order, chrooted, each with {@code /bin/sh}, in namespaces of their
 * own (see {@link UserNamespace}): as root a private mount and PID namespace; otherwise also a
 * user namespace mapping ids 0–65535 through the user's subordinate ids, so a package manager
 * finds root, {@code shadow}, {@code _apt} and the rest as on a real system.
 *
 * <p>For the scripts' duration the root has {@code /proc}, a small {@code /dev} (null, zero,
 * full, random, urandom, tty, a private devpts with ptmx, shm), {@code /sys} read-only, the
 * host's network and the host's {@code /etc/resolv.conf} and {@code /etc/hosts}; none of it
 * reaches the image, which gets back exactly what the base had at those two paths (or nothing).
 *
 * <p>The staging is done by a helper process inside the namespaces ({@link StageMain}): it
 * exports the assembled root, runs the scripts and reads the result back into an image, which
 * this source then copies into the build. Owners are those seen inside. What a user namespace
 * cannot hold — device nodes, sockets, owners outside the mapped range, {@code security.*} and
 * {@code trusted.*} xattrs — is taken from the assembled root for every path the scripts left
 * untouched.
 */
public final class ScriptStage implements Source {
    /** The environment every script gets, before {@code --env}. */
    public static final Map<String, String> ENVIRONMENT = Map.of(
            "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME", "/root",
            "TERM", "dumb");
    private static final Pattern ENV_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
    /** Lines of a failed script's output repeated in the error when its output was not shown. */
    static final int TAIL = 20;

    private final List<Source> sources;
    private final Ext4Options options;
    private final List<Path> scripts;
    private final Map<String, String> env;
    private final Path work;
    private final java.util.function.Consumer<String> log;
    private final boolean quiet;

    /**
     * @param sources what the scripts run on (base image and added files)
     * @param options the final image's options; the staging images are larger and sparse
     * @param scripts shell scripts, run in order
     * @param env variables added to {@link #ENVIRONMENT}
     * @param work where the staging directory is made (next to the output)
     * @param log takes each line of the scripts' output and kiln's notes; null for none
     */
    public ScriptStage(List<Source> sources, Ext4Options options, List<Path> scripts, Map<String, String> env, Path work,
            java.util.function.Consumer<String> log) {
        this.sources = List.copyOf(sources);
        this.options = options;
        this.scripts = List.copyOf(scripts);
        this.env = new LinkedHashMap<>(env);
        this.work = work;
        this.quiet = log == null;
        this.log = log == null ? line -> { } : log;
        for (String name : this.env.keySet()) {
            if (!ENV_NAME.matcher(name).matches()) {
                throw new IllegalArgumentException("--env: not a variable name: " + name);
            }
        }
    }

    /** Parses {@code NAME=VALUE} as {@code --env} takes it. */
    public static Map.Entry<String, String> parseEnv(String s) {
        int eq = s.indexOf('=');
        if (eq <= 0 || !ENV_NAME.matcher(s.substring(0, eq)).matches()) {
            throw new IllegalArgumentException("--env: want NAME=VALUE: " + s);
        }
        return Map.entry(s.substring(0, eq), s.substring(eq + 1));
    }

    @Override
    public String describe() {
        return "script " + scripts.get(0) + (scripts.size() > 1 ? " + " + (scripts.size() - 1) + " more" : "");
    }

    @Override
    public long[] estimate() throws IOException {
        long[] acc = new long[2];
        for (Source s : sources) {
            long[] e = s.estimate();
            acc[0] += e[0];
            acc[1] += e[1];
        }
        return acc;
    }

    @Override
    public void applyTo(Ext4Writer w) throws IOException {
        for (Path s : scripts) {
            if (!Files.isRegularFile(s)) {
                throw new InvalidSourceException(s + ": no such script; give the path of a shell script to --script");
            }
        }
        if (UserNamespace.which("unshare") == null || UserNamespace.which("chroot") == null) {
            throw new InvalidSourceException("--script needs unshare and chroot (util-linux, coreutils); install them");
        }
        UserNamespace ns = UserNamespace.detect();
        if (ns.note() != null) {
            log.accept("kiln: " + ns.note());
        }
        Path dir = Files.createTempDirectory(work, ".kiln-stage-");
        Cleanup cleanup = new Cleanup(dir, ns);
        Build.track(cleanup);
        try {
            Path assembled = dir.resolve("assembled.ext4");
            try (Ext4Writer stage = Ext4Writer.create(assembled, stagingOptions())) {
                for (Source s : sources) {
                    s.applyTo(stage);
                }
            }
            Path captured = dir.resolve("captured.ext4");
            runHelper(ns, dir, assembled, captured, cleanup);
            new Ext4Source(captured).applyTo(w);
        } finally {
            cleanup.run();
            Build.untrack(cleanup);
        }
    }

    /** Staging images: sparse, no journal, room for what the scripts install. */
    private Ext4Options stagingOptions() {
        long size = Math.max(options.sizeBytes() * 4, 8L << 30);
        return Ext4Options.builder(size).journal(false).inlineData(false).build();
    }

    private void runHelper(UserNamespace ns, Path dir, Path assembled, Path captured, Cleanup cleanup)
            throws IOException {
        Properties spec = new Properties();
        spec.setProperty("assembled", assembled.toString());
        spec.setProperty("root", dir.resolve("root").toString());
        spec.setProperty("captured", captured.toString());
        spec.setProperty("size", Long.toString(stagingOptions().sizeBytes()));
        spec.setProperty("maxId", Long.toString(ns.maxUid()));
        for (int i = 0; i < scripts.size(); i++) {
            Path copy = dir.resolve("script-" + i);
            Files.copy(scripts.get(i), copy);
            spec.setProperty("script." + i, copy.toString());
            spec.setProperty("script." + i + ".name", scripts.get(i).getFileName().toString());
        }
        Map<String, String> all = new LinkedHashMap<>(ENVIRONMENT);
        all.putAll(env);
        int i = 0;
        for (Map.Entry<String, String> e : all.entrySet()) {
            spec.setProperty("env." + i++, e.getKey() + "=" + e.getValue());
        }
        for (String f : List.of("resolv.conf", "hosts")) {
            Path host = Path.of("/etc", f);
            if (Files.isReadable(host)) {
                Files.write(dir.resolve("host-" + f), Files.readAllBytes(host));
            }
        }
        Path specFile = dir.resolve("stage.properties");
        try (var out = Files.newBufferedWriter(specFile)) {
            spec.store(out, "kiln script stage");
        }
        List<String> java = new ArrayList<>(List.of(javaCommand(), "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Xshare:auto", "--add-opens", "java.base/sun.nio.fs=ALL-UNNAMED", "--add-exports",
                "java.base/sun.nio.ch=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), StageMain.class.getName(), specFile.toString()));
        ProcessBuilder pb = new ProcessBuilder(ns.wrap(java)).redirectErrorStream(true).directory(dir.toFile());
        Process p;
        try {
            p = ns.start(pb);
        } catch (IOException e) {
            throw new InvalidSourceException("--script: cannot start the script stage (" + e.getMessage() + "); --script "
                    + "needs root or unprivileged user namespaces (unshare)");
        }
        cleanup.process = p;
        Deque<String> tail = new ArrayDeque<>();
        // The output is relayed on another thread, so the deadline below can fire even when a
        // script hangs with its output open.
        Thread relay = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(reader(p))) {
                String line;
                while ((line = in.readLine()) != null) {
                    log.accept(line);
                    synchronized (tail) {
                        tail.addLast(line);
                        if (tail.size() > TAIL) {
                            tail.removeFirst();
                        }
                    }
                }
            } catch (IOException e) {
                // the stage went away
            }
        }, "kiln-script-output");
        relay.setDaemon(true);
        relay.start();
        int code;
        try {
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                cleanup.run();
                relay.join(5000);
                throw new InvalidSourceException(describe() + ": still running after " + timeoutSeconds + " s; stopped, "
                        + "nothing was published (--script-timeout sets the limit)" + lastLines(tail));
            }
            code = p.exitValue();
            relay.join(10_000);
        } catch (InterruptedException e) {
            cleanup.run();
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted");
        }
        Properties status = new Properties();
        Path statusFile = dir.resolve("status.properties");
        if (Files.isRegularFile(statusFile)) {
            try (var in = Files.newBufferedReader(statusFile)) {
                status.load(in);
            }
        }
        String result = status.getProperty("result", "");
        String lastLines = lastLines(tail);
        switch (result) {
            case "ok" -> {
                if (code != 0) {
                    throw new IOException("the script stage exited with status " + code + lastLines);
                }
            }
            case "script-failed" -> {
                int n = Integer.parseInt(status.getProperty("script"));
                throw new InvalidSourceException(scripts.get(n) + ": exited with status " + status.getProperty("exit")
                        + "; nothing was published" + lastLines);
            }
            case "error" -> throw new InvalidSourceException("--script: " + status.getProperty("message") + lastLines);
            default -> throw new InvalidSourceException("--script: the script stage failed (status " + code + ")"
                    + (ns.kind() == UserNamespace.Kind.ROOT ? "" : "; --script needs unprivileged user namespaces")
                    + lastLines);
        }
    }

    private String lastLines(Deque<String> tail) {
        synchronized (tail) {
            return quiet && !tail.isEmpty() ? "; last lines:\n  " + String.join("\n  ", tail) : "";
        }
    }

    /** How long the scripts may run, together (default: an hour). */
    public ScriptStage timeout(long seconds) {
        this.timeoutSeconds = seconds;
        return this;
    }

    private long timeoutSeconds = 3600;

    private static Reader reader(Process p) {
        return new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8);
    }

    static String javaCommand() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /**
     * Ends the helper (and with it every process of its PID namespace) and removes the staging
     * directory; files owned by subordinate ids are removed from inside a user namespace, since
     * the invoking user may not be allowed to.
     */
    static final class Cleanup implements Runnable {
        private final Path dir;
        private final UserNamespace ns;
        volatile Process process;

        Cleanup(Path dir, UserNamespace ns) {
            this.dir = dir;
            this.ns = ns;
        }

        @Override
        public synchronized void run() {
            Process p = process;
            if (p != null && p.isAlive()) {
                // PID 1 of the stage's namespace first: the kernel then ends every process in it. (unshare's
                // --kill-child does not reach it once a user namespace was mapped from outside.)
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroy();
                try {
                    if (!p.waitFor(5, TimeUnit.SECONDS)) {
                        p.destroyForcibly();
                        p.waitFor(5, TimeUnit.SECONDS);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            if (!Files.exists(dir)) {
                return;
            }
            Build.deleteTree(dir);
            // What Java could not delete: files owned by subordinate ids (removed inside the namespace),
            // or names the JVM cannot spell (bytes that are not valid in its file-name encoding).
            if (Files.exists(dir)) {
                try {
                    List<String> rmCmd = List.of("rm", "-rf", "--", dir.toString());
                    Process rm = ns.kind() == UserNamespace.Kind.ROOT
                            ? new ProcessBuilder(rmCmd).redirectErrorStream(true).start()
                            : ns.start(new ProcessBuilder(ns.wrap(rmCmd)).redirectErrorStream(true));
                    Subprocess.drainAndWait(rm, 120, "removing " + dir);
                } catch (IOException | RuntimeException e) {
                    // reported below
                }
            }
            if (Files.exists(dir)) {
                System.err.println("kiln: could not remove the staging directory " + dir + "; remove it by hand");
            }
        }
    }
}
