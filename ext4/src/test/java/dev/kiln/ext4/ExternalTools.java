package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Runs e2fsprogs and other host tools for integration tests. A missing tool skips the test
 * with the reason, except under {@code CI=true}, where it fails: CI installs every tool.
 */
public final class ExternalTools {
    private ExternalTools() {}

    public record Result(int exit, String out) {}

    private static final java.util.Map<String, String> PACKAGES = java.util.Map.ofEntries(
            java.util.Map.entry("getfattr", "attr"), java.util.Map.entry("setfattr", "attr"),
            java.util.Map.entry("e2fsck", "e2fsprogs"), java.util.Map.entry("debugfs", "e2fsprogs"),
            java.util.Map.entry("dumpe2fs", "e2fsprogs"), java.util.Map.entry("resize2fs", "e2fsprogs"),
            java.util.Map.entry("mkfs.ext4", "e2fsprogs"), java.util.Map.entry("mount", "mount"),
            java.util.Map.entry("zstd", "zstd"), java.util.Map.entry("xz", "xz-utils"),
            java.util.Map.entry("busybox", "busybox-static"), java.util.Map.entry("htpasswd", "apache2-utils"),
            java.util.Map.entry("docker-registry", "docker-registry"), java.util.Map.entry("skopeo", "skopeo"),
            java.util.Map.entry("umoci", "umoci"), java.util.Map.entry("tune2fs", "e2fsprogs"),
            java.util.Map.entry("qemu-system-x86_64", "qemu-system-x86"), java.util.Map.entry("agetty", "util-linux"),
            java.util.Map.entry("dpkg-deb", "dpkg"), java.util.Map.entry("setpriv", "util-linux"),
            java.util.Map.entry("unshare", "util-linux"), java.util.Map.entry("useradd", "passwd"),
            java.util.Map.entry("newuidmap", "uidmap"), java.util.Map.entry("setcap", "libcap2-bin"),
            java.util.Map.entry("getcap", "libcap2-bin"), java.util.Map.entry("debootstrap", "debootstrap"),
            java.util.Map.entry("setfacl", "acl"), java.util.Map.entry("readelf", "binutils"),
            java.util.Map.entry("strace", "strace"));

    public static Path require(String tool) {
        if (tool.startsWith("/") && Files.isExecutable(Path.of(tool))) {
            return Path.of(tool); // already resolved (a test passing require's answer to run)
        }
        for (String dir : new String[] {"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin",
                "/usr/local/sbin"}) {
            Path p = Path.of(dir, tool);
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        String reason = tool + " is not installed (apt-get install " + PACKAGES.getOrDefault(tool, tool)
                + "); integration test skipped";
        if ("true".equals(System.getenv("CI"))) {
            fail(reason + " — but CI=true, so every tool must be present");
        }
        skip(reason);
        return null;
    }

    /**
     * Skips the running test, saying why on the console as well as in the reports (where
     * nobody looks when the build is green).
     */
    public static void skip(String reason) {
        System.err.println("SKIPPED " + callerTest() + ": " + reason);
        Assumptions.abort(reason);
    }

    private static String callerTest() {
        for (StackTraceElement e : Thread.currentThread().getStackTrace()) {
            String c = e.getClassName();
            if ((c.endsWith("Test") || c.endsWith("IT")) && !c.equals(ExternalTools.class.getName())
                    && !e.getMethodName().startsWith("lambda$")) {
                return c.substring(c.lastIndexOf('.') + 1) + "." + e.getMethodName();
            }
        }
        return "a test";
    }

    public static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    public static Result run(List<String> cmd) throws IOException, InterruptedException {
        List<String> full = new ArrayList<>(cmd);
        full.set(0, require(cmd.get(0)).toString());
        ProcessBuilder pb = new ProcessBuilder(full).redirectErrorStream(true);
        pb.environment().put("LC_ALL", "C");
        pb.environment().put("E2FSPROGS_FAKE_TIME", "");
        Process p = pb.start();
        p.getOutputStream().close();
        // Read on another thread, then wait with the deadline: a tool that hangs keeps its output
        // open, so reading it to the end first would never time out.
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        Thread reader = new Thread(() -> {
            try (var in = p.getInputStream()) {
                in.transferTo(out);
            } catch (IOException e) {
                // the process went away
            }
        }, "external-tool-output");
        reader.setDaemon(true);
        reader.start();
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            fail("timed out after 300 s: " + cmd);
        }
        reader.join(10_000);
        return new Result(p.exitValue(), out.toString(StandardCharsets.UTF_8));
    }

    /** Asserts that {@code e2fsck -fn} finds nothing to fix. */
    public static void assertFsckClean(Path image) throws IOException, InterruptedException {
        Result r = run(List.of("e2fsck", "-fn", image.toString()));
        if (r.exit != 0 || r.out.contains("WARNING") || r.out.contains("Fix?") || r.out.contains("Clear?")) {
            fail("e2fsck -fn " + image + " exited " + r.exit + ":\n" + r.out);
        }
    }

    /** Runs a debugfs request read-only and returns its output. */
    public static String debugfs(Path image, String request) throws IOException, InterruptedException {
        Result r = run(List.of("debugfs", "-R", request, image.toString()));
        assertEquals(0, r.exit, r.out);
        return r.out;
    }
}
