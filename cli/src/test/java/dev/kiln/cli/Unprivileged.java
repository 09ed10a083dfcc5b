package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Runs the kiln jar as an unprivileged user that the test makes: with a subordinate id range
 * (as podman and buildah users have) or without one. Needs root to make the users (CI runs as
 * root); the rootless path is otherwise untested.
 */
record Unprivileged(String name, long uid, long gid) {
    /** A user with ids 200000-265535 in /etc/subuid and /etc/subgid. */
    static Unprivileged withRange() throws Exception {
        return ensure("kiln-it-sub", "200000-265535");
    }

    /** A system user with no subordinate range. */
    static Unprivileged withoutRange() throws Exception {
        return ensure("kiln-it-nosub", null);
    }

    private static Unprivileged ensure(String name, String range) throws Exception {
        TestKernel.need(ExternalTools.isRoot(), "making an unprivileged test user needs root (CI runs as root)");
        ExternalTools.require("setpriv");
        ExternalTools.require("useradd");
        if (ExternalTools.run(List.of("id", "-u", name)).exit() != 0) {
            var r = ExternalTools.run(List.of("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name));
            assertEquals(0, r.exit(), r.out());
        }
        if (range != null) {
            ExternalTools.require("newuidmap");
            String subuid = Files.readString(Path.of("/etc/subuid"));
            if (!subuid.contains(name + ":")) {
                var r = ExternalTools.run(List.of("usermod", "--add-subuids", range, "--add-subgids", range, name));
                assertEquals(0, r.exit(), r.out());
            }
        }
        long uid = Long.parseLong(ExternalTools.run(List.of("id", "-u", name)).out().trim());
        long gid = Long.parseLong(ExternalTools.run(List.of("id", "-g", name)).out().trim());
        return new Unprivileged(name, uid, gid);
    }

    /** A work directory the user may write (under /tmp, not the test's private temp dir). */
    static Path workDir() throws IOException {
        Path d = Files.createTempDirectory(Path.of("/tmp"), "kiln-rootless-");
        Files.setPosixFilePermissions(d, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
        return d;
    }

    /** The kiln jar Maven packaged before the integration tests. */
    static Path jar() {
        Path jar = Path.of("target/kiln.jar").toAbsolutePath();
        assertTrue(Files.exists(jar), jar + " (run mvn verify, which packages it first)");
        return jar;
    }

    List<String> command(Path home, String... kilnArgs) {
        return command("java", home, kilnArgs);
    }

    /** The command that runs kiln as this user on the given {@code java}. */
    List<String> command(String java, Path home, String... kilnArgs) {
        return command(java, List.of(), home, kilnArgs);
    }

    /**
     * Put before a command that starts kiln: SIGINT back at its default. A test run started as a
     * background job of a script inherits it ignored, and so would kiln, which then rightly lets
     * the Ctrl-C the interrupt tests send pass.
     */
    static final List<String> DEFAULT_SIGINT = List.of("env", "--default-signal=INT");

    /** The command that runs kiln as this user on the given {@code java} with these JVM options. */
    List<String> command(String java, List<String> jvmOptions, Path home, String... kilnArgs) {
        List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid", Long.toString(uid), "--regid", Long.toString(gid),
                "--clear-groups", "--"));
        cmd.addAll(DEFAULT_SIGINT);
        cmd.addAll(List.of(java, "-Duser.home=" + home));
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-jar", jar().toString()));
        cmd.addAll(List.of(kilnArgs));
        return cmd;
    }

    /** A started kiln and the thread that reads its output. */
    record Started(Process process, Thread output) {}

    /** Starts kiln as this user; every output line goes to {@code lines} as it comes. */
    Started start(Path home, Consumer<String> lines, String... kilnArgs) throws IOException {
        return start("java", home, lines, kilnArgs);
    }

    /** Starts kiln as this user on the given {@code java}. */
    Started start(String java, Path home, Consumer<String> lines, String... kilnArgs) throws IOException {
        return start(java, List.of(), home, lines, kilnArgs);
    }

    /** Starts kiln as this user on the given {@code java} with these JVM options. */
    Started start(String java, List<String> jvmOptions, Path home, Consumer<String> lines, String... kilnArgs)
            throws IOException {
        List<String> cmd = command(java, jvmOptions, home, kilnArgs);
        cmd.set(0, ExternalTools.require("setpriv").toString());
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).directory(home.toFile());
        pb.environment().put("HOME", home.toString());
        pb.environment().put("USER", name);
        pb.environment().put("LOGNAME", name);
        Process p = pb.start();
        p.getOutputStream().close();
        Thread t = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    lines.accept(line);
                }
            } catch (IOException e) {
                // the process ended
            }
        }, "kiln-it-output");
        t.setDaemon(true);
        t.start();
        return new Started(p, t);
    }

    /** Runs kiln as this user to its end; the exit code and all output. */
    ExternalTools.Result run(Path home, String... kilnArgs) throws Exception {
        return runOn("java", home, kilnArgs);
    }

    /** Runs kiln as this user on the given {@code java}, to its end. */
    ExternalTools.Result runOn(String javaCommand, Path home, String... kilnArgs) throws Exception {
        return runOn(javaCommand, List.of(), home, kilnArgs);
    }

    /** Runs kiln as this user on the given {@code java} with these JVM options, to its end. */
    ExternalTools.Result runOn(String javaCommand, List<String> jvmOptions, Path home, String... kilnArgs) throws Exception {
        StringBuffer out = new StringBuffer();
        Started s = start(javaCommand, jvmOptions, home, l -> out.append(l).append('\n'), kilnArgs);
        if (!s.process().waitFor(15, java.util.concurrent.TimeUnit.MINUTES)) {
            s.process().destroyForcibly();
            throw new AssertionError("kiln as " + name + " did not finish: " + out);
        }
        s.output().join(10_000);
        return new ExternalTools.Result(s.process().exitValue(), out.toString());
    }
}
